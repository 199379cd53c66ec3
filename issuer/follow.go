package issuer

import (
	"context"
	"sync"
	"time"

	"github.com/authz-dev/authz/store"
)

// ChangeFeed tells of every write any node makes (store.Store's Watch).
type ChangeFeed interface {
	Watch(ctx context.Context, fn func(store.Change)) error
}

// KeyLoader reloads issuers' keys into the keyring the server signs with.
type KeyLoader interface {
	Sync(ctx context.Context, issuerName string) error
	SyncAll(ctx context.Context) error
}

// Follow applies every node's writes to this node until ctx ends: caches
// drop what changed at once, and keys are reloaded off the notification
// path, with a burst of changes to one issuer coalesced into one reload.
// Every poll interval all keys are reloaded too, as a safety net for a
// notification lost in a way the feed could not notice. Follow returns once
// every goroutine it started has stopped.
func (s *Server) Follow(ctx context.Context, feed ChangeFeed, keys KeyLoader, poll time.Duration) {
	q := newReloadQueue()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { every(ctx, poll, func(time.Time) { q.addAll() }) })
	wg.Go(func() {
		for {
			names, all, ok := q.next(ctx)
			if !ok {
				return
			}
			if all {
				if err := keys.SyncAll(ctx); err != nil && ctx.Err() == nil {
					s.cfg.Logger.Error("reload all keys", "err", err)
				}
				continue
			}
			for _, name := range names {
				if err := keys.Sync(ctx, name); err != nil && ctx.Err() == nil {
					s.cfg.Logger.Error("reload keys", "issuer", name, "err", err)
				}
			}
		}
	})
	if err := feed.Watch(ctx, func(c store.Change) {
		s.Invalidate(c)
		switch c.Kind {
		case store.ChangeIssuer, store.ChangeKey:
			q.add(c.Issuer)
		case store.ChangeAll:
			q.addAll()
		}
	}); err != nil && ctx.Err() == nil {
		s.cfg.Logger.Error("change feed stopped", "err", err)
	}
}

// ForgetExpiredAssertions deletes used client-assertion ids every interval,
// until ctx ends, once they can no longer be replayed.
func (s *Server) ForgetExpiredAssertions(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func(now time.Time) {
		if n, err := s.store.DeleteExpiredAssertions(ctx, now); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("forget expired client assertions", "err", err)
		} else if n > 0 {
			s.cfg.Logger.Debug("forgot expired client assertions", "count", n)
		}
	})
}

// every runs do at each tick of interval until ctx ends.
func every(ctx context.Context, interval time.Duration, do func(now time.Time)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			do(now)
		}
	}
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
