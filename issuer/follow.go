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

// KeyInvalidator drops what this node holds of issuers' keys when they are
// written, so that their next use loads them again.
type KeyInvalidator interface {
	Invalidate(issuerName string)
	InvalidateChanged(ctx context.Context) error
}

// Follow applies every node's writes to this node until ctx ends: caches
// drop what changed at once. Every poll interval, and whenever the feed may
// have missed something, the keys written since the last poll are dropped
// too, as a safety net for a notification lost in a way the feed could not
// notice; a poll reads only what was written. Follow returns once every
// goroutine it started has stopped.
func (s *Server) Follow(ctx context.Context, feed ChangeFeed, keys KeyInvalidator, poll time.Duration) {
	pollNow := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		every(ctx, poll, pollNow, func(time.Time) {
			if err := keys.InvalidateChanged(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Error("poll for written keys", "err", err)
			}
		})
	})
	if err := feed.Watch(ctx, func(c store.Change) {
		s.Invalidate(c)
		switch c.Kind {
		case store.ChangeIssuer, store.ChangeKey:
			keys.Invalidate(c.Issuer)
		case store.ChangeAll:
			select {
			case pollNow <- struct{}{}:
			default:
			}
		}
	}); err != nil && ctx.Err() == nil {
		s.cfg.Logger.Error("change feed stopped", "err", err)
	}
}

// ForgetExpiredAssertions deletes used client-assertion ids every interval,
// until ctx ends, once they can no longer be replayed.
func (s *Server) ForgetExpiredAssertions(ctx context.Context, interval time.Duration) {
	every(ctx, interval, nil, func(now time.Time) {
		if n, err := s.store.DeleteExpiredAssertions(ctx, now); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("forget expired client assertions", "err", err)
		} else if n > 0 {
			s.cfg.Logger.Debug("forgot expired client assertions", "count", n)
		}
	})
}

// every runs do at each tick of interval, and whenever wake (which may be
// nil) says so, until ctx ends.
func every(ctx context.Context, interval time.Duration, wake <-chan struct{}, do func(now time.Time)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			do(now)
		case <-wake:
			do(time.Now())
		}
	}
}
