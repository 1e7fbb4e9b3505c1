package password

import (
	"context"
	"errors"
	"time"
)

// ErrBusy is a hash that could not start within the wait: as many run as
// the memory budget and the cores allow. The caller answers 503 with Retry-After.
var ErrBusy = errors.New("password: too many passwords are being checked now; try again shortly")

// HashMemory is what one argon2id hash of this package holds while it runs.
const HashMemory = argonMemory * 1024

// Hashing bounds the argon2id work that runs at once, and how much of its
// cores' time it takes. Each hash holds HashMemory (19 MiB) for its run and
// keeps a core busy for as long, so a flood of sign-in attempts could
// otherwise take all of a machine's memory and its cores, and the guard in
// front of every proxied request with them.
//
// Bounding by memory alone was not enough: thirteen hashes at once on one
// core left the guard 1 % of its rate. Bounding by cores was not enough
// either: Go's scheduler lets a running hash keep its core for a 10 ms slice
// at a time, and the guard's requests get only the gaps between slices, so
// one hash after another on one core still left the guard 11 %
// (docs/performance.md). So after each hash its slot rests in proportion to
// the time the hash took: at a share of one half, a slot hashes at most half
// of the time, and the proxied requests have its core to themselves for the
// other half.
type Hashing struct {
	slots chan struct{}
	wait  time.Duration
	// rest is how long a slot rests per unit of time its hash took.
	rest float64
	// now and after are the clock; tests replace them.
	now   func() time.Time
	after func(time.Duration, func())
}

// NewHashing lets at most budget bytes of argon2id memory and cores hashes
// be in use at once (at least one hash), each slot hashing at most share
// (0 < share ≤ 1) of the time, and has a hash wait up to wait for its turn.
func NewHashing(budget int64, cores int, share float64, wait time.Duration) *Hashing {
	return &Hashing{
		slots: make(chan struct{}, max(1, min(budget/HashMemory, int64(cores)))),
		wait:  wait,
		rest:  (1 - share) / share,
		now:   time.Now,
		after: func(d time.Duration, f func()) { time.AfterFunc(d, f) },
	}
}

// Do runs hash once a slot is free, or returns ErrBusy after the wait (or
// ctx's error, when the request is gone first). Do returns as soon as hash
// has run; the slot rests after it in the background.
func (h *Hashing) Do(ctx context.Context, hash func()) error {
	t := time.NewTimer(h.wait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
	start := h.now()
	defer func() {
		rest := time.Duration(float64(h.now().Sub(start)) * h.rest)
		if rest <= 0 {
			<-h.slots
			return
		}
		h.after(rest, func() { <-h.slots })
	}()
	hash()
	return nil
}
