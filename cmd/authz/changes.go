package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
)

// followChanges applies every node's writes to this node: caches drop what
// changed at once, and keys are reloaded off the notification path, with
// bursts of changes to one issuer coalesced into one reload.
//
// Every poll interval all keys are reloaded too, as a safety net for a
// notification lost in a way the listener could not notice.
func followChanges(ctx context.Context, st store.Store, public *issuer.Server, km *keys.Manager, poll time.Duration, log *slog.Logger) {
	q := newReloadQueue()
	go every(ctx, poll, func(time.Time) { q.addAll() })
	go func() {
		for {
			names, all, ok := q.next(ctx)
			if !ok {
				return
			}
			if all {
				if err := km.SyncAll(ctx); err != nil && ctx.Err() == nil {
					log.Error("reload all keys", "err", err)
				}
				continue
			}
			for _, name := range names {
				if err := km.Sync(ctx, name); err != nil && ctx.Err() == nil {
					log.Error("reload keys", "issuer", name, "err", err)
				}
			}
		}
	}()
	_ = st.Watch(ctx, func(c store.Change) {
		public.Invalidate(c)
		switch c.Kind {
		case store.ChangeIssuer, store.ChangeKey:
			q.add(c.Issuer)
		case store.ChangeAll:
			q.addAll()
		}
	})
}

// reloadQueue collects issuers whose keys need a reload.
type reloadQueue struct {
	mu      sync.Mutex
	pending map[string]bool
	all     bool
	wake    chan struct{}
}

func newReloadQueue() *reloadQueue {
	return &reloadQueue{pending: map[string]bool{}, wake: make(chan struct{}, 1)}
}

func (q *reloadQueue) add(name string) {
	q.mu.Lock()
	q.pending[name] = true
	q.mu.Unlock()
	q.signal()
}

func (q *reloadQueue) addAll() {
	q.mu.Lock()
	q.all = true
	q.mu.Unlock()
	q.signal()
}

func (q *reloadQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next waits for work and takes all of it.
func (q *reloadQueue) next(ctx context.Context) (names []string, all, ok bool) {
	for {
		q.mu.Lock()
		if q.all || len(q.pending) > 0 {
			all = q.all
			for n := range q.pending {
				names = append(names, n)
			}
			q.all = false
			clear(q.pending)
			q.mu.Unlock()
			return names, all, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, false, false
		case <-q.wake:
		}
	}
}
