package listener

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConcurrencyLimitRefusesAtOnceBeyondTheLimit(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	h := limitConcurrency(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		entered <- struct{}{}
		<-release
	}), 2, []string{"/healthz"}, oauthRefusal)
	srv := httptest.NewServer(h)
	defer srv.Close()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			resp, err := http.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	<-entered
	<-entered
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third request: %d, want 503 with Retry-After", resp.StatusCode)
	}
	// The liveness probe still answers: a busy node is not a dead one.
	resp, err = http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("liveness probe at the limit: %d, want 200", resp.StatusCode)
	}
	close(release)
	wg.Wait()
}

func TestConnectionsPerCallerAreCappedExceptForTrustedProxies(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trusted, _ := ParseTrustedProxies("127.0.0.3")
	ln := capPerAddress(raw, 2, trusted.trusts)
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(ip string) net.Conn {
		t.Helper()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// closedByServer reports whether the server hung up on c.
	closedByServer := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
	a1, a2, a3 := dial("127.0.0.2"), dial("127.0.0.2"), dial("127.0.0.2")
	if closedByServer(a1) || closedByServer(a2) || !closedByServer(a3) {
		t.Fatal("a caller's third connection was kept, or one of its first two dropped")
	}
	if b := dial("127.0.0.4"); closedByServer(b) {
		t.Fatal("another caller was refused")
	}
	for range 4 {
		if p := dial("127.0.0.3"); closedByServer(p) {
			t.Fatal("a trusted proxy was capped")
		}
	}
	// A closed connection gives its place back.
	(<-accepted).Close()
	if again := dial("127.0.0.2"); closedByServer(again) {
		t.Fatal("a place freed by a closed connection was not given back")
	}
}

func TestCallerGroupsIPv6By64(t *testing.T) {
	var none TrustedProxies
	for remote, want := range map[string]string{
		"203.0.113.5:1":            "203.0.113.5",
		"[2001:db8:1:2:3::4]:1":    "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::9]:1": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.1]:1":     "192.0.2.1",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		if _, got := none.Identify(r); got != want {
			t.Errorf("Identify(%s) gives the caller %s, want %s", remote, got, want)
		}
	}
}

func TestBodiesAreReadBeforeTheyCountAndBounded(t *testing.T) {
	h := admitBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}), 10, []string{"/import"}, oauthRefusal)
	for _, tc := range []struct {
		path   string
		body   string
		length int64
		status int
	}{
		{"/", "0123456789", 10, 200},
		{"/", "0123456789a", 11, 413},
		{"/", "0123456789a", -1, 413}, // chunked: no length given
		{"/", "", 0, 200},
		{"/import", "0123456789a", 11, 200}, // its handler bounds it
	} {
		r := httptest.NewRequest("POST", tc.path, strings.NewReader(tc.body))
		r.ContentLength = tc.length
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != tc.status || (tc.status == 200 && rec.Body.String() != tc.body) {
			t.Errorf("body %q (length %d): %d %q", tc.body, tc.length, rec.Code, rec.Body)
		}
	}
}
