package issuer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/authz-dev/authz/store"
)

// recordingLoader counts the key reloads Follow asks for.
type recordingLoader struct {
	mu        sync.Mutex
	synced    map[string]int
	syncedAll int
}

func (l *recordingLoader) Sync(_ context.Context, name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.synced[name]++
	return nil
}

func (l *recordingLoader) SyncAll(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.syncedAll++
	return nil
}

func (l *recordingLoader) counts() (map[string]int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, v := range l.synced {
		out[k] = v
	}
	return out, l.syncedAll
}

func TestFollowReloadsChangedKeysAndStopsWhenAsked(t *testing.T) {
	b := newTestbed(t, withoutWatch)
	loader := &recordingLoader{synced: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		b.issuer.Follow(ctx, b.store, loader, time.Hour)
		close(done)
	}()
	// The feed starts with "anything may have changed": every key reloads.
	eventually(t, "the first full reload", func() bool { _, all := loader.counts(); return all >= 1 })
	if err := b.keys.RotateNow(ctx, "payments"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rotated issuer's keys reload", func() bool { n, _ := loader.counts(); return n["payments"] >= 1 })

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
