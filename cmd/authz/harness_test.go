package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/api/client"
	"golang.org/x/oauth2/clientcredentials"
)

// childEnv makes the test binary run authz's main instead of the tests, so
// end-to-end tests start the real server as its own process.
const childEnv = "AUTHZ_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
	}
	code := m.Run()
	if leaks := runLog.scan(); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "LOG SCAN FAILED: the servers' logs over the whole run contain %s\n", strings.Join(leaks, ", "))
		code = 1
	} else if runLog.outputCount() > 0 {
		fmt.Fprintf(os.Stderr, "log scan: %d secrets, tokens and assertions searched in %d server logs; none found\n",
			runLog.sensitiveCount(), runLog.outputCount())
	}
	os.Exit(code)
}

// runLog gathers, across every test of the run, each server's output and
// every secret, access token and client assertion the tests saw, so that
// one scan at the end covers the whole run.
var runLog = &leakScanner{}

type leakScanner struct {
	mu        sync.Mutex
	outputs   []*lockedBuffer
	sensitive map[string]string // value → what it is
}

func (l *leakScanner) watch(b *lockedBuffer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outputs = append(l.outputs, b)
}

// remember registers a value that must never be logged. Short values are
// skipped: they would match by chance.
func (l *leakScanner) remember(what, value string) {
	if len(value) < 16 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sensitive == nil {
		l.sensitive = map[string]string{}
	}
	l.sensitive[value] = what
}

func (l *leakScanner) scan() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var leaks []string
	for _, out := range l.outputs {
		text := out.String()
		for value, what := range l.sensitive {
			if strings.Contains(text, value) {
				leaks = append(leaks, what)
			}
		}
	}
	return leaks
}

func (l *leakScanner) sensitiveCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sensitive)
}

func (l *leakScanner) outputCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.outputs)
}

// authzBinary is what the end-to-end tests run as authz: this test binary,
// which runs main in a child, or the build named by AUTHZ_TEST_BINARY, so
// that an attack test can be pointed at an older build to measure what it
// did before a fix.
func authzBinary() string {
	if b := os.Getenv("AUTHZ_TEST_BINARY"); b != "" {
		return b
	}
	return os.Args[0]
}

// process is a running authz server.
type process struct {
	admin admin
	cmd   *exec.Cmd
	// output is the server's log (stderr); banner is what it prints to
	// stdout, where development mode shows its admin credentials on purpose.
	output  *lockedBuffer
	banner  *lockedBuffer
	exited  chan struct{}
	exitErr error
	// publicURL is where the public listener answers; advertisedURL is the
	// base of its issuer URLs, which cluster nodes share.
	publicURL     string
	advertisedURL string
	adminURL      string
	adminAPI      *client.Client
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runAuthz runs one authz command to completion and returns its exit code
// and combined output.
func runAuthz(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, authzBinary(), args...)
	cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("run authz %v: %v", args, err)
	}
	return 0, string(out)
}

// startServer runs `authz serve` with args on loopback ports and waits until
// both listeners are up. The server is stopped when the test ends.
func startServer(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	p := &process{output: &lockedBuffer{}, banner: &lockedBuffer{}, exited: make(chan struct{})}
	runLog.watch(p.output)
	// Debug logs every token issued: the leak scans read the most the
	// server ever logs.
	// Plain http on loopback, as tests serve; TLS has its own test.
	full := append([]string{"serve", "--log-format", "json", "--log-level", "debug", "--insecure-http"}, args...)
	if !hasFlag(args, "--public-addr") {
		full = append(full, "--public-addr", "127.0.0.1:0")
	}
	if !hasFlag(args, "--admin-addr") {
		full = append(full, "--admin-addr", "127.0.0.1:0")
	}
	p.cmd = exec.Command(authzBinary(), full...)
	p.cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = p.banner
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start authz: %v", err)
	}
	listening := make(chan map[string]string, 2)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.output, line)
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "listening" {
				listening <- map[string]string{"listener": fmt.Sprint(rec["listener"]), "addr": fmt.Sprint(rec["addr"]), "public_url": fmt.Sprint(rec["public_url"])}
			}
		}
		_, _ = io.Copy(p.output, stderr)
	}()
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop(t) })

	deadline := time.After(60 * time.Second)
	for p.publicURL == "" || p.adminURL == "" {
		select {
		case l := <-listening:
			if l["listener"] == "public" {
				p.publicURL, p.advertisedURL = "http://"+l["addr"], l["public_url"]
			} else {
				p.adminURL = "http://" + l["addr"]
			}
		case <-p.exited:
			t.Fatalf("authz exited before listening: %v\n%s", p.exitErr, p.output)
		case <-deadline:
			t.Fatalf("authz did not start listening within 60s\n%s", p.output)
		}
	}
	return p
}

// stop sends SIGTERM and expects a clean exit; stopping twice is harmless.
func (p *process) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.exitErr != nil {
			t.Errorf("authz exited uncleanly after SIGTERM: %v\n%s", p.exitErr, p.output)
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("authz ignored SIGTERM for 30s\n%s", p.output)
	}
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

func newKEKBase64(t *testing.T) string {
	t.Helper()
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(kek)
}

// freeLoopbackAddr finds a port that is free now, for tests that restart a
// server on the same address.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// api is a client of the process's admin API, logged in as its admin
// client.
func (p *process) api(t *testing.T) *client.Client {
	t.Helper()
	p.knowAdmin(t)
	if p.adminAPI == nil {
		p.adminAPI = client.New(p.adminURL, &client.ClientCredentials{
			TokenURL: p.publicURL + "/issuers/system/token", ClientID: p.admin.clientID, ClientSecret: p.admin.clientSecret,
		}, nil)
	}
	return p.adminAPI
}

// putIssuer creates or replaces an issuer through the admin API.
func (p *process) putIssuer(t *testing.T, name string, req api.IssuerRequest) api.IssuerResponse {
	t.Helper()
	iss, err := p.api(t).PutIssuer(context.Background(), name, req, 0)
	if err != nil {
		t.Fatalf("put issuer %s: %v", name, err)
	}
	return iss
}

// createClient registers a client through the admin API; its secret joins
// the values the log scan looks for.
func (p *process) createClient(t *testing.T, issuerName string, req api.CreateClientRequest) api.CreatedClientResponse {
	t.Helper()
	c, err := p.api(t).CreateClient(context.Background(), issuerName, req)
	if err != nil {
		t.Fatalf("create a client of %s: %v", issuerName, err)
	}
	runLog.remember("client_secret", c.ClientSecret)
	return c
}

// admin holds the credentials of an admin client.
type admin struct{ clientID, clientSecret string }

var (
	clientIDLine     = regexp.MustCompile(`client_id:\s+(\S+)`)
	clientSecretLine = regexp.MustCompile(`client_secret:\s+(\S+)`)
)

func parseAdmin(t *testing.T, out string) admin {
	t.Helper()
	id, secret := clientIDLine.FindStringSubmatch(out), clientSecretLine.FindStringSubmatch(out)
	if id == nil || secret == nil {
		t.Fatalf("no admin credentials in:\n%s", out)
	}
	runLog.remember("an admin client secret", secret[1])
	return admin{clientID: id[1], clientSecret: secret[1]}
}

// bootstrap runs `authz bootstrap` on a database and returns the first
// admin client.
func bootstrap(t *testing.T, env []string) admin {
	t.Helper()
	code, out := runAuthz(t, env, "bootstrap")
	if code != 0 {
		t.Fatalf("bootstrap: exit %d\n%s", code, out)
	}
	return parseAdmin(t, out)
}

// adminToken gets a token for the process's admin client from its own
// system issuer.
func (p *process) adminToken(t *testing.T) string {
	t.Helper()
	p.knowAdmin(t)
	return clientToken(t, p.publicURL+"/issuers/system/token", p.admin.clientID, p.admin.clientSecret, "")
}

// knowAdmin learns the admin client of a dev-mode server from its banner,
// unless the test bootstrapped one.
func (p *process) knowAdmin(t *testing.T) {
	t.Helper()
	if p.admin.clientID == "" {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(p.banner.String(), "client_secret:") {
			if time.Now().After(deadline) {
				t.Fatalf("no admin credentials known for this server:\n%s", p.banner)
			}
			time.Sleep(20 * time.Millisecond)
		}
		p.admin = parseAdmin(t, p.banner.String())
	}
}

// newPaymentsClient registers the issuer "payments" (audience "a") and one
// client of it.
func newPaymentsClient(t *testing.T, p *process) (id, secret string) {
	t.Helper()
	p.putIssuer(t, "payments", api.IssuerRequest{Audience: "a"})
	c := p.createClient(t, "payments", api.CreateClientRequest{Name: "c"})
	return c.ClientID, c.ClientSecret
}

// clientToken runs the client-credentials grant and returns the token.
func clientToken(t *testing.T, tokenURL, id, secret, scope string) string {
	t.Helper()
	tok, err := (&clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: tokenURL, Scopes: strings.Fields(scope)}).Token(context.Background())
	if err != nil {
		t.Fatalf("token from %s for %s: %v", tokenURL, id, err)
	}
	runLog.remember("an access token", tok.AccessToken)
	return tok.AccessToken
}
