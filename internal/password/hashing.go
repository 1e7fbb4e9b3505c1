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

// Hashing bounds the argon2id work that runs at once. Each hash holds
// HashMemory (19 MiB) for its run and keeps a core busy for as long, so a
// flood of sign-in attempts could otherwise take all of a machine's memory
// and its cores, and the guard in front of every proxied request with them.
// Bounding by memory alone was not enough: thirteen hashes at once on one
// core left the guard 1 % of its rate (docs/performance.md). Running more
// hashes than there are cores for them checks no more passwords a second,
// since hashing is CPU-bound; it only starves everything else.
type Hashing struct {
	slots chan struct{}
	wait  time.Duration
}

// NewHashing lets at most budget bytes of argon2id memory and cores hashes
// be in use at once (at least one hash), and has a hash wait up to wait
// for its turn.
func NewHashing(budget int64, cores int, wait time.Duration) *Hashing {
	return &Hashing{slots: make(chan struct{}, max(1, min(budget/HashMemory, int64(cores)))), wait: wait}
}

// Do runs hash once a slot is free, or returns ErrBusy after the wait (or
// ctx's error, when the request is gone first).
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
	defer func() { <-h.slots }()
	hash()
	return nil
}
