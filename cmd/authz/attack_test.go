package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authz-dev/authz/api"
)

// devEnv runs a server in memory.
var devEnv = []string{"AUTHZ_DATABASE_URL=", "AUTHZ_KEK="}

// from is an HTTP client whose connections leave from the loopback address
// ip: all of 127.0.0.0/8 is loopback on Linux, so one test plays callers at
// several addresses.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 8}}
}

// basicToken sends a client-credentials request with Basic credentials
// and extra headers, and returns the status.
func basicToken(t *testing.T, hc *http.Client, tokenURL, id, secret string, header http.Header) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	req.SetBasicAuth(id, secret)
	resp, err := hc.Do(req)
	if err != nil {
		t.Errorf("token request: %v", err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// statusCounts tallies answers by status.
type statusCounts struct {
	mu sync.Mutex
	n  map[int]int
}

func (c *statusCounts) add(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[int]int{}
	}
	c.n[status]++
}

func (c *statusCounts) get(status int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[status]
}

func (c *statusCounts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.n)
}

// TestAStrangerWhoKnowsAClientIDCannotLockItOut replays the outside
// review's attack, shortened: one wrong secret for the victim's id every
// 250 ms from one address, while the victim asks for a token every 500 ms
// from another. Before the fix the victim got 429 for most of the attack.
func TestAStrangerWhoKnowsAClientIDCannotLockItOut(t *testing.T) {
	t.Parallel()
	p := startServer(t, devEnv) // the default limits: 10 failures a minute
	id, secret := newPaymentsClient(t, p)
	tokenURL := p.publicURL + "/issuers/payments/token"
	attacker, victim := from("127.0.0.2"), from("127.0.0.3")
	var attack, served statusCounts
	ctx, stop := context.WithTimeout(context.Background(), 6*time.Second)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		for tick := time.NewTicker(250 * time.Millisecond); ctx.Err() == nil; <-tick.C {
			attack.add(basicToken(t, attacker, tokenURL, id, "a-wrong-secret", nil))
		}
	})
	for tick := time.NewTicker(500 * time.Millisecond); ctx.Err() == nil; <-tick.C {
		served.add(basicToken(t, victim, tokenURL, id, secret, nil))
	}
	wg.Wait()
	t.Logf("attacker's answers %v; the victim's %v", &attack, &served)
	if served.get(http.StatusOK) < 10 || served.get(http.StatusTooManyRequests) > 0 {
		t.Errorf("the victim was refused: %v", &served)
	}
	if attack.get(http.StatusTooManyRequests) == 0 {
		t.Errorf("the attacker was never throttled: %v", &attack)
	}
}

// TestTheThrottleKeysOnTheDecodedClientID: RFC 6749 §2.3.1 form-encodes
// Basic credentials, so pay%2Dclient is pay-client and must not get fresh
// guesses.
func TestTheThrottleKeysOnTheDecodedClientID(t *testing.T) {
	t.Parallel()
	p := startServer(t, devEnv, "--auth-failures-per-client", "3")
	tokenURL := p.publicURL + "/issuers/payments/token"
	p.putIssuer(t, "payments", api.IssuerRequest{Audience: "a"})
	p.createClient(t, "payments", api.CreateClientRequest{ClientID: "pay-client", Name: "c"})
	for range 3 {
		if s := basicToken(t, http.DefaultClient, tokenURL, "pay-client", "wrong", nil); s != http.StatusUnauthorized {
			t.Fatalf("a wrong secret: %d", s)
		}
	}
	for _, alias := range []string{"pay-client", "pay%2Dclient", "pay%2dclient"} {
		if s := basicToken(t, http.DefaultClient, tokenURL, alias, "wrong", nil); s != http.StatusTooManyRequests {
			t.Errorf("%s after the limit: %d, want 429", alias, s)
		}
	}
}

// TestASecretInTheIDFieldIsNotLogged: a user who swaps id and secret sends
// the secret as the client id; the log names unknown ids only by a digest.
func TestASecretInTheIDFieldIsNotLogged(t *testing.T) {
	t.Parallel()
	p := startServer(t, devEnv)
	id, secret := newPaymentsClient(t, p)
	if s := basicToken(t, http.DefaultClient, p.publicURL+"/issuers/payments/token", secret, id, nil); s != http.StatusUnauthorized {
		t.Fatalf("swapped credentials: %d", s)
	}
	if s := basicToken(t, http.DefaultClient, p.publicURL+"/issuers/payments/token", id, "wrong", nil); s != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d", s)
	}
	waitForLog(t, p, `"client_id":"`+id+`"`)
	if strings.Contains(p.output.String(), secret) {
		t.Fatal("the log holds the secret that was sent as a client id")
	}
}

// waitForLog waits until the server's log holds text.
func waitForLog(t *testing.T, p *process, text string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.output.String(), text); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never held %s:\n%s", text, p.output)
		}
	}
}

// TestSlowBodiesFromOneAddressDoNotStarveOthers replays the review's
// measurement: 1,030 sockets from one address, each sending headers,
// Content-Length: 1000 and 11 bytes of body, and then nothing. Before the
// fix each held one of the 1,024 request slots for the whole read timeout,
// and every other caller got 503.
func TestSlowBodiesFromOneAddressDoNotStarveOthers(t *testing.T) {
	t.Parallel()
	p := startServer(t, devEnv)
	id, secret := newPaymentsClient(t, p)
	addr := strings.TrimPrefix(p.publicURL, "http://")
	const sockets = 1030
	var open atomic.Int64
	var conns []net.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	for range sockets {
		wg.Go(func() {
			conn, err := dialer.Dial("tcp", addr)
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			if _, err := conn.Write([]byte("POST /issuers/payments/token HTTP/1.1\r\nHost: authz\r\n" +
				"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=")); err == nil {
				open.Add(1)
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	time.Sleep(time.Second) // let the server take them all in

	var tokens, jwks statusCounts
	for start := time.Now(); time.Since(start) < 3*time.Second; time.Sleep(50 * time.Millisecond) {
		tokens.add(basicToken(t, http.DefaultClient, p.publicURL+"/issuers/payments/token", id, secret, nil))
		resp, err := http.Get(p.publicURL + "/issuers/payments/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		jwks.add(resp.StatusCode)
	}
	t.Logf("%d slow-body sockets sent their first bytes; meanwhile tokens %v, JWKS %v", open.Load(), &tokens, &jwks)
	if tokens.get(http.StatusOK) == 0 || tokens.get(http.StatusServiceUnavailable) > 0 ||
		jwks.get(http.StatusOK) == 0 || jwks.get(http.StatusServiceUnavailable) > 0 {
		t.Errorf("other callers were refused during the slow-body attack: tokens %v, JWKS %v", &tokens, &jwks)
	}
}

// TestTrustedProxiesGiveEachCallerItsOwnBucket: behind a load balancer
// every caller shares its address, so a flood from one caller would
// throttle all. With the balancer in --trusted-proxies, the right-most
// address it did not add to X-Forwarded-For is the caller's; from any other
// peer, X-Forwarded-For is ignored.
func TestTrustedProxiesGiveEachCallerItsOwnBucket(t *testing.T) {
	t.Parallel()
	p := startServer(t, devEnv, "--trusted-proxies", "127.0.0.1/32, ::1/128",
		"--auth-failures-per-address", "5", "--auth-failures-per-client", "1000")
	id, secret := newPaymentsClient(t, p)
	tokenURL := p.publicURL + "/issuers/payments/token"
	xff := func(v string) http.Header { return http.Header{"X-Forwarded-For": {v}} }
	balancer := from("127.0.0.1")
	var flood statusCounts
	for i := range 8 {
		flood.add(basicToken(t, balancer, tokenURL, fmt.Sprintf("c-made-up-%d", i), "x", xff("198.51.100.7")))
	}
	if flood.get(http.StatusUnauthorized) != 5 || flood.get(http.StatusTooManyRequests) != 3 {
		t.Errorf("a flood behind the balancer: %v, want 5 × 401 then 429", &flood)
	}
	if s := basicToken(t, balancer, tokenURL, id, secret, xff("203.0.113.9, 198.51.100.8")); s != http.StatusOK {
		t.Errorf("another caller behind the same balancer: %d, want 200", s)
	}
	// A forged hop on the left changes nothing: the balancer appended the
	// flooder's real address on the right.
	if s := basicToken(t, balancer, tokenURL, "c-made-up-9", "x", xff("192.0.2.1, 198.51.100.7")); s != http.StatusTooManyRequests {
		t.Errorf("the flooder with a forged hop: %d, want 429", s)
	}
	// A peer that is no trusted proxy cannot choose its address.
	spoofer := from("127.0.0.2")
	var spoofed statusCounts
	for i := range 8 {
		spoofed.add(basicToken(t, spoofer, tokenURL, fmt.Sprintf("c-made-up-%d", i), "x", xff(fmt.Sprintf("192.0.2.%d", i+10))))
	}
	if spoofed.get(http.StatusUnauthorized) != 5 || spoofed.get(http.StatusTooManyRequests) != 3 {
		t.Errorf("an untrusted peer rotating X-Forwarded-For: %v, want 5 × 401 then 429", &spoofed)
	}
}
