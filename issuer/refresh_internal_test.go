package issuer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authz-dev/authz/store"
)

// TestRefreshAheadRunsOneLoadPerKeyAndBoundsThemAll: a key whose reload
// runs starts no second one, and past maxAheadRefreshes no key starts one,
// until a slot is free again.
func TestRefreshAheadRunsOneLoadPerKeyAndBoundsThemAll(t *testing.T) {
	r := refreshAhead{log: slog.New(slog.DiscardHandler)}
	release := make(chan struct{})
	var started, finished atomic.Int64
	blocked := func(context.Context) error {
		started.Add(1)
		<-release
		finished.Add(1)
		return nil
	}
	waitFor := func(what string, n *atomic.Int64, want int64) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); n.Load() < want; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d, want %d", what, n.Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	r.start(clientKey{"i", "a"}, blocked)
	r.start(clientKey{"i", "a"}, blocked) // already running
	r.start(issuerRefresh("i"), blocked)
	r.start(clientKey{"i", "b"}, blocked) // past the bound
	waitFor("loads started", &started, 2)
	time.Sleep(50 * time.Millisecond)
	if n := started.Load(); n != maxAheadRefreshes {
		t.Fatalf("%d loads started, want %d: one per key, at most %d", n, maxAheadRefreshes, maxAheadRefreshes)
	}
	close(release)
	waitFor("loads finished", &finished, maxAheadRefreshes)
	waitIdle(t, &r)
	r.start(clientKey{"i", "b"}, blocked)
	waitFor("a load once slots are free", &started, maxAheadRefreshes+1)
}

// waitIdle waits until r runs no load: what the loads did happened before.
func waitIdle(t *testing.T, r *refreshAhead) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		r.mu.Lock()
		idle := len(r.running) == 0
		r.mu.Unlock()
		if idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("finished loads still hold their slots")
		}
	}
}

// TestAFailedRefreshAheadIsLoggedWithWhatItWasFor: a reload that fails
// says which entry, and one that finds the entry gone says nothing.
func TestAFailedRefreshAheadIsLoggedWithWhatItWasFor(t *testing.T) {
	var logged bytes.Buffer
	r := refreshAhead{log: slog.New(slog.NewJSONHandler(&logged, nil))}
	r.start(clientKey{"payments", "gone"}, func(context.Context) error { return store.ErrNotFound })
	r.start(issuerRefresh("payments"), func(context.Context) error { return errors.New("boom") })
	waitIdle(t, &r)
	out := logged.String()
	if !strings.Contains(out, `"entry":"payments"`) || !strings.Contains(out, "boom") || strings.Contains(out, "gone") {
		t.Fatalf("log:\n%s", out)
	}
	logged.Reset()
	r.start(clientKey{"payments", "reader"}, func(context.Context) error { return errors.New("boom") })
	waitIdle(t, &r)
	if out := logged.String(); !strings.Contains(out, `"entry":{"issuer":"payments","client_id":"reader"}`) {
		t.Fatalf("log:\n%s", out)
	}
}
