package issuer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/memory"
)

// testbed is the public side as every test of this package builds it: a
// store holding one issuer and its keys, a keyring, the issuer server on
// a real HTTP server, change notifications wired to its caches, and a clock
// the test moves.
type testbed struct {
	t      testing.TB
	store  store.Store
	keys   *keys.Manager
	ring   *keys.Keyring
	issuer *issuer.Server
	srv    *httptest.Server
	// log is everything the server logged, as JSON lines.
	log *lockedBuffer
	// The clock is the wall clock moved by offset, or frozen at frozen
	// when that is set.
	offset atomic.Int64
	frozen atomic.Pointer[time.Time]
	// heard receives every change notification the server obeyed, once
	// it has obeyed it.
	heard chan store.Change
}

// bedSettings are what a test may vary; newTestbed fills in the rest.
type bedSettings struct {
	store  store.Store
	issuer store.Issuer
	config issuer.Config
	// watch wires change notifications to the server's caches.
	watch bool
}

type bedOption func(*bedSettings)

// withIssuer changes the issuer the testbed starts with.
func withIssuer(change func(*store.Issuer)) bedOption {
	return func(s *bedSettings) { change(&s.issuer) }
}

// withConfig changes the server's configuration.
func withConfig(change func(*issuer.Config)) bedOption {
	return func(s *bedSettings) { change(&s.config) }
}

// withStore runs the testbed on another store, such as PostgreSQL.
func withStore(st store.Store) bedOption { return func(s *bedSettings) { s.store = st } }

// withoutWatch leaves change notifications out, for tests that count or
// time what a request alone does.
func withoutWatch(s *bedSettings) { s.watch = false }

// newTestbed builds the issuer "payments" (audience https://api.example.test,
// RS256, client secrets, 5-minute tokens) unless options say otherwise.
func newTestbed(t testing.TB, opts ...bedOption) *testbed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	set := bedSettings{
		store: nil,
		issuer: store.Issuer{
			Name:                 "payments",
			AvailableScopes:      []string{"read", "write", "admin"},
			ClientRoles:          []string{"viewer", "editor"},
			Audience:             "https://api.example.test",
			TokenLifetime:        5 * time.Minute,
			SigningAlgorithm:     keys.RS256,
			ClientAuthenticators: []string{credential.ClientSecret},
		},
		watch: true,
	}
	for _, o := range opts {
		o(&set)
	}
	if set.store == nil {
		set.store = memory.New()
	}
	b := &testbed{t: t, store: set.store, ring: keys.NewKeyring(set.config.IssuerCacheSize), log: &lockedBuffer{}}
	if _, _, err := b.store.PutIssuer(ctx, set.issuer, 0); err != nil {
		t.Fatal(err)
	}
	kek := make([]byte, keys.KEKSize)
	_, _ = rand.Read(kek)
	sealer, _ := keys.NewSealer(kek)
	b.keys = keys.NewManager(b.store, sealer, b.ring,
		keys.Schedule{RotationPeriod: time.Hour, PublishLead: 11 * time.Minute, RetirePeriod: time.Hour}, b.clock)
	if _, err := b.keys.Reconcile(ctx, set.issuer.Name); err != nil {
		t.Fatal(err)
	}
	// The public URL must be known before the server is built, so the
	// handler is swapped in behind a placeholder.
	var handler http.Handler
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(b.srv.Close)
	cfg := set.config
	cfg.PublicURL, cfg.Now = b.srv.URL, b.clock
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(b.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	b.issuer = issuer.New(cfg, b.store, b.keys)
	handler = b.issuer.Handler()
	if set.watch {
		b.heard = make(chan store.Change, 4096)
		watching := make(chan struct{})
		go func() {
			_ = b.store.Watch(ctx, func(c store.Change) {
				if c.Kind == store.ChangeAll {
					select {
					case <-watching:
					default:
						close(watching)
					}
				}
				b.issuer.Invalidate(c)
				if c.Kind == store.ChangeIssuer || c.Kind == store.ChangeKey {
					b.keys.Invalidate(c.Issuer)
				}
				select {
				case b.heard <- c:
				default:
				}
			})
		}()
		<-watching
	}
	return b
}

func (b *testbed) clock() time.Time {
	if t := b.frozen.Load(); t != nil {
		return *t
	}
	return time.Now().Add(time.Duration(b.offset.Load()))
}

// freeze stops the clock at the current second.
func (b *testbed) freeze() {
	t := b.clock().Truncate(time.Second)
	b.frozen.Store(&t)
}

func (b *testbed) advance(d time.Duration) {
	if t := b.frozen.Load(); t != nil {
		next := t.Add(d)
		b.frozen.Store(&next)
		return
	}
	b.offset.Add(int64(d))
}

// tokenURL is the token endpoint of the testbed's issuer.
func (b *testbed) tokenURL() string { return b.srv.URL + "/issuers/payments/token" }

// addClient registers c under "payments" with defaults for what it leaves
// out, and returns the secret it gives it.
func (b *testbed) addClient(c store.Client) string {
	b.t.Helper()
	if c.IssuerName == "" {
		c.IssuerName = "payments"
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	if c.Audience == "" {
		c.Audience = "https://api.example.test"
	}
	sec := credential.NewSecret()
	c.Secrets = append(c.Secrets, store.Secret{ID: sec.ID, Digest: sec.Digest, Hint: sec.Hint})
	if _, err := b.store.CreateClient(context.Background(), c); err != nil {
		b.t.Fatal(err)
	}
	return sec.Value
}

// addSecret gives a client of "payments" another secret, valid until
// expires, and returns it.
func (b *testbed) addSecret(clientID string, expires time.Time) string {
	b.t.Helper()
	sec := credential.NewSecret()
	if _, err := b.store.AddClientSecret(context.Background(), "payments", clientID,
		store.Secret{ID: sec.ID, Digest: sec.Digest, Hint: sec.Hint, ExpiresAt: expires}, time.Time{}); err != nil {
		b.t.Fatal(err)
	}
	return sec.Value
}

// tokenStatus is the status of a client-credentials request with Basic
// credentials.
func (b *testbed) tokenStatus(t testing.TB, clientID, secret string) int {
	t.Helper()
	return b.tokenStatusAt(t, "payments", clientID, secret)
}

// tokenStatusAt is tokenStatus at another issuer.
func (b *testbed) tokenStatusAt(t testing.TB, issuerName, clientID, secret string) int {
	t.Helper()
	status, _ := b.formAt(t, issuerName, "token", clientID, secret, url.Values{"grant_type": {"client_credentials"}})
	return status
}

// formAt posts form to one of an issuer's endpoints ("token",
// "introspect") with Basic credentials, and returns the status and the
// JSON answer.
func (b *testbed) formAt(t testing.TB, issuerName, endpoint, clientID, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.srv.URL+"/issuers/"+issuerName+"/"+endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// logged fails the test unless the server's log holds text.
func (b *testbed) logged(t testing.TB, text string) {
	t.Helper()
	if !strings.Contains(b.log.String(), text) {
		t.Fatalf("the log does not hold %q:\n%s", text, b.log)
	}
}

// lockedBuffer is a log sink that handlers may write to at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// settle makes a write of its own and waits until the server has obeyed
// its notification: notifications arrive in commit order, so every change
// written before has been obeyed too, however late a loaded machine
// delivers it.
func (b *testbed) settle(ctx context.Context) {
	b.t.Helper()
	name := fmt.Sprintf("settle-%d", time.Now().UnixNano())
	if _, _, err := b.store.PutIssuer(ctx, store.Issuer{Name: name, Audience: "a", TokenLifetime: time.Minute, SigningAlgorithm: keys.ES256}, 0); err != nil {
		b.t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case c := <-b.heard:
			if c.Kind == store.ChangeIssuer && c.Issuer == name {
				return
			}
		case <-deadline:
			b.t.Fatalf("the server did not hear its own write %s within 30 s", name)
		}
	}
}
