package issuer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/authz-dev/authz/store"
)

// recordingInvalidator counts the key invalidations and polls Follow
// makes.
type recordingInvalidator struct {
	mu          sync.Mutex
	invalidated map[string]int
	polls       int
}

func (l *recordingInvalidator) Invalidate(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.invalidated[name]++
}

func (l *recordingInvalidator) InvalidateChanged(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.polls++
	return nil
}

func (l *recordingInvalidator) counts() (map[string]int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, v := range l.invalidated {
		out[k] = v
	}
	return out, l.polls
}

func TestFollowReloadsChangedKeysAndStopsWhenAsked(t *testing.T) {
	b := newTestbed(t, withoutWatch)
	loader := &recordingInvalidator{invalidated: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		b.issuer.Follow(ctx, b.store, loader, time.Hour)
		close(done)
	}()
	// The feed starts with "anything may have changed": the keys written
	// since the last poll are dropped at once, not at the next tick.
	eventually(t, "the first poll", func() bool { _, polls := loader.counts(); return polls >= 1 })
	if err := b.keys.RotateNow(ctx, "payments"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rotated issuer's keys are dropped", func() bool { n, _ := loader.counts(); return n["payments"] >= 1 })

	// A disabled client is refused as soon as its change arrives.
	secret := b.addClient(store.Client{ID: "c-follow", Enabled: true})
	eventually(t, "the new client gets a token", func() bool { return b.tokenStatus(t, "c-follow", secret) == 200 })
	if _, err := b.store.UpdateClient(ctx, "payments", "c-follow", func(c *store.Client) error { c.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the disabled client is refused", func() bool { return b.tokenStatus(t, "c-follow", secret) == 401 })

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not return after its context ended")
	}
}
