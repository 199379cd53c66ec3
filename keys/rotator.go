package keys

import (
	"context"
	"log/slog"
	"time"

	"github.com/authz-dev/authz/store"
)

// Locker hands out a cluster-wide lock, so that one node rotates at a time.
type Locker interface {
	TryLock(ctx context.Context, name string) (unlock func(), lost <-chan struct{}, ok bool, err error)
}

// rotationLock is the name of the lock the rotating node holds.
const rotationLock = "key-rotation"

// Rotator advances every issuer's keys on schedule. Whichever node holds
// the rotation lock does the work; the others wait for it to be free, and
// learn of new keys through change notifications.
type Rotator struct {
	manager  *Manager
	locker   Locker
	interval time.Duration
	log      *slog.Logger
	// OnAdvance, when set, is told of every issuer whose keys moved on.
	OnAdvance func(issuerName string)
}

// NewRotator returns a Rotator that checks every interval.
func NewRotator(m *Manager, locker Locker, interval time.Duration, log *slog.Logger) *Rotator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Rotator{manager: m, locker: locker, interval: interval, log: log}
}

// Run rotates until ctx ends, then releases the lock if it holds it.
func (r *Rotator) Run(ctx context.Context) {
	var unlock func()
	var lost <-chan struct{}
	defer func() {
		if unlock != nil {
			unlock()
		}
	}()
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	for {
		if unlock != nil && closed(lost) {
			r.log.Warn("lost the key-rotation lock; another node may rotate")
			unlock, lost = nil, nil
		}
		if unlock == nil {
			var ok bool
			var err error
			unlock, lost, ok, err = r.locker.TryLock(ctx, rotationLock)
			switch {
			case err != nil && ctx.Err() == nil:
				r.log.Warn("key-rotation lock unavailable", "err", err)
			case ok:
				r.log.Info("this node rotates keys")
				// Due times were planned under the last holder's default
				// schedule, which may differ from this node's.
				if err := r.manager.store.MarkAllKeysDue(ctx); err != nil && ctx.Err() == nil {
					r.log.Error("mark every issuer's keys due", "err", err)
				}
			}
		}
		if unlock != nil {
			r.check(ctx, lost)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// rotationBatch is how many due issuers a check reads at a time.
const rotationBatch = 1000

// check reads the issuers whose keys are due, by an index on their due
// time, so that a check with nothing due reads no row whatever the number
// of issuers. It runs Reconcile, which reads and writes under the issuer's
// lock, for those with a transition due now, and records for the others
// when they next will be. An issuer it reconciled is planned again at the
// next check, from what was written. It stops when the lock is lost, and
// records no plan made under it: the node that takes the lock over checks
// the rest under its own schedule. Each issuer's transitions are made
// under that issuer's row lock, so two nodes never make the same one.
func (r *Rotator) check(ctx context.Context, lost <-chan struct{}) {
	var after store.DueCursor
	for {
		batch, err := r.manager.store.ListKeysDue(ctx, r.manager.now(), after, rotationBatch)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Error("list issuers with keys due", "err", err)
			}
			return
		}
		var planned []store.KeysDue
		for _, ik := range batch {
			// An issuer reconciled below becomes due at once, before this
			// position, so the check does not meet it again.
			after = ik.Position
			if at, ok := r.manager.nextDue(ik); ok {
				planned = append(planned, store.KeysDue{Issuer: ik.Issuer.Name, Version: ik.Version, At: at})
				continue
			}
			if closed(lost) {
				break
			}
			changed, err := r.manager.Reconcile(ctx, ik.Issuer.Name)
			switch {
			case err != nil && ctx.Err() == nil:
				r.log.Error("rotate keys", "issuer", ik.Issuer.Name, "err", err)
			case changed:
				r.log.Info("keys advanced", "issuer", ik.Issuer.Name)
				if r.OnAdvance != nil {
					r.OnAdvance(ik.Issuer.Name)
				}
			}
		}
		// Plans made under a lock since lost are the new holder's to make,
		// under its own default schedule.
		if closed(lost) {
			return
		}
		if err := r.manager.store.SetKeysDue(ctx, planned); err != nil {
			if ctx.Err() == nil {
				r.log.Error("record when keys are due", "err", err)
			}
			return
		}
		if len(batch) < rotationBatch {
			return
		}
	}
}

// closed reports whether ch is closed; a nil ch never is.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
