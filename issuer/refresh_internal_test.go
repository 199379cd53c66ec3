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
	r := newRefreshAhead(slog.New(slog.DiscardHandler), time.Now, time.Minute)
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
	waitIdle(t, r)
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
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	r := newRefreshAhead(slog.New(slog.NewJSONHandler(&logged, nil)), clock.now, time.Minute)
	r.start(clientKey{"payments", "gone"}, func(context.Context) error { return store.ErrNotFound })
	waitIdle(t, r)
	r.start(issuerRefresh("payments"), func(context.Context) error { return errors.New("boom") })
	waitIdle(t, r)
	out := logged.String()
	if !strings.Contains(out, `"entry":"payments"`) || !strings.Contains(out, "boom") || strings.Contains(out, "gone") {
		t.Fatalf("log:\n%s", out)
	}
	logged.Reset()
	clock.advance(r.pauseAfterFailure)
	r.start(clientKey{"payments", "reader"}, func(context.Context) error { return errors.New("boom") })
	waitIdle(t, r)
	if out := logged.String(); !strings.Contains(out, `"entry":{"issuer":"payments","client_id":"reader"}`) {
		t.Fatalf("log:\n%s", out)
	}
}

// TestAFailingReloadIsNotRetriedOnEveryToken reproduces a record the node
// cannot read (or a database refusing queries), in steady use: each token
// of it finds it due for a reload. Without the pause, every token started
// one more failing query and logged one more warning until the TTL.
func TestAFailingReloadIsNotRetriedOnEveryToken(t *testing.T) {
	var logged bytes.Buffer
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	r := newRefreshAhead(slog.New(slog.NewJSONHandler(&logged, nil)), clock.now, time.Minute)
	var loads atomic.Int64
	failing := func(context.Context) error {
		loads.Add(1)
		return errors.New("cannot decode the record")
	}
	for range 100 { // 100 tokens of the same client, one after another
		r.start(clientKey{"payments", "broken"}, failing)
		waitIdle(t, r)
		clock.advance(time.Millisecond)
	}
	if n, lines := loads.Load(), strings.Count(logged.String(), "\n"); n != 1 || lines != 1 {
		t.Fatalf("100 tokens in the window ran %d failing reloads and logged %d lines, want 1 and 1", n, lines)
	}
	// A healthy entry is left to load at its TTL meanwhile.
	var healthy atomic.Int64
	r.start(clientKey{"payments", "reader"}, func(context.Context) error { healthy.Add(1); return nil })
	waitIdle(t, r)
	if healthy.Load() != 0 {
		t.Fatal("a reload started while paused")
	}
	clock.advance(r.pauseAfterFailure)
	r.start(clientKey{"payments", "reader"}, func(context.Context) error { healthy.Add(1); return nil })
	waitIdle(t, r)
	if healthy.Load() != 1 {
		t.Fatal("reloads did not resume after the pause")
	}
}
