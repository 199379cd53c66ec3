package issuer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/authz-dev/authz/store"
)

// refreshAhead reloads cached issuers and clients in steady use in the
// background once they are three quarters of their TTL old. Without it,
// each of them made one request wait for the database each TTL, up to
// storeRefreshTimeout when the database is slow. An entry still expires
// at its TTL, so the TTL still bounds how long a change notification
// somehow missed goes unnoticed, and an entry whose reload did not happen
// loads as before.
//
// Only uses a stranger cannot make start a reload: a token issued, a
// valid token introspected (Server.promote). A busy entry is read every
// three quarters of a TTL instead of every TTL. At most
// maxAheadRefreshes loads run at once, one per entry; a use that finds
// none free leaves the entry to a later use, or to the load at the TTL.
//
// A failed reload pauses them all for pauseAfterFailure. The entry it was
// for is as due as before, so without the pause every token of it would
// start the same failing read, and log it, until the TTL: a record the
// node cannot read, or a database refusing queries, would turn the token
// rate into a query rate and a log flood. While paused, entries load at
// their TTL as they did before reloads ahead existed.
type refreshAhead struct {
	log               *slog.Logger
	now               func() time.Time
	pauseAfterFailure time.Duration
	mu                sync.Mutex
	running           map[any]bool
	pausedUntil       time.Time
}

// newRefreshAhead reloads the entries of caches with this TTL. A failure
// pauses reloads for the rest of the window, so the entry it was for
// loads at its TTL.
func newRefreshAhead(log *slog.Logger, now func() time.Time, ttl time.Duration) *refreshAhead {
	return &refreshAhead{log: log, now: now, pauseAfterFailure: ttl - refreshAfter(ttl)}
}

const maxAheadRefreshes = 2

// refreshAfter is the age at which a cached entry is reloaded ahead of
// its TTL.
func refreshAfter(ttl time.Duration) time.Duration { return ttl * 3 / 4 }

// start runs load for key in a goroutine of its own, unless one is running
// for key or maxAheadRefreshes are, or a failure paused reloads. A load's
// failure is logged; an entry gone from the store is not one.
func (r *refreshAhead) start(key any, load func(ctx context.Context) error) {
	r.mu.Lock()
	if r.running[key] || len(r.running) >= maxAheadRefreshes || r.now().Before(r.pausedUntil) {
		r.mu.Unlock()
		return
	}
	if r.running == nil {
		r.running = map[any]bool{}
	}
	r.running[key] = true
	r.mu.Unlock()
	go func() {
		defer func() {
			r.mu.Lock()
			delete(r.running, key)
			r.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), storeRefreshTimeout)
		defer cancel()
		if err := load(ctx); err != nil && !errors.Is(err, store.ErrNotFound) {
			r.mu.Lock()
			r.pausedUntil = r.now().Add(r.pauseAfterFailure)
			r.mu.Unlock()
			r.log.Warn("reload ahead of the TTL failed; reloads ahead paused", "entry", key, "err", err, "paused_for", r.pauseAfterFailure)
		}
	}()
}

// issuerRefresh keys an issuer's refresh apart from its clients'.
type issuerRefresh string
