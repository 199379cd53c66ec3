package issuer

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestRefreshAheadRunsOneLoadPerKeyAndBoundsThemAll: a key whose reload
// runs starts no second one, and past maxAheadRefreshes no key starts one,
// until a slot is free again.
func TestRefreshAheadRunsOneLoadPerKeyAndBoundsThemAll(t *testing.T) {
	var r refreshAhead
	release := make(chan struct{})
	var started, finished atomic.Int64
	blocked := func(context.Context) {
		started.Add(1)
		<-release
		finished.Add(1)
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
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		r.mu.Lock()
		idle := len(r.running) == 0
		r.mu.Unlock()
		if idle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("finished loads still hold their slots")
		}
	}
	r.start(clientKey{"i", "b"}, blocked)
	waitFor("a load once slots are free", &started, maxAheadRefreshes+1)
}
