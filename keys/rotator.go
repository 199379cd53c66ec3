package keys

import (
	"context"
	"log/slog"
	"time"
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
		if unlock != nil {
			select {
			case <-lost:
				r.log.Warn("lost the key-rotation lock; another node may rotate")
				unlock, lost = nil, nil
			default:
			}
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
			}
		}
		if unlock != nil {
			r.reconcileAll(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// reconcileAll reads every issuer and all keys in two queries and runs
// Reconcile, which reads and writes under the issuer's lock, only for the
// issuers with something due: a check that finds nothing due costs two
// reads, not one per issuer.
func (r *Rotator) reconcileAll(ctx context.Context) {
	issuers, all, err := r.manager.listAll(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("list issuers and keys for key rotation", "err", err)
		}
		return
	}
	for _, iss := range issuers {
		if !r.manager.due(iss, all[iss.Name]) {
			continue
		}
		changed, err := r.manager.Reconcile(ctx, iss.Name)
		switch {
		case err != nil && ctx.Err() == nil:
			r.log.Error("rotate keys", "issuer", iss.Name, "err", err)
		case changed:
			r.log.Info("keys advanced", "issuer", iss.Name)
			if r.OnAdvance != nil {
				r.OnAdvance(iss.Name)
			}
		}
	}
}
