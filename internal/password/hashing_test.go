package password

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A budget of 256 MiB runs 13 hashes at once; the fourteenth waits for a
// slot and gets ErrBusy when none frees within the wait.
func TestHashingIsBounded(t *testing.T) {
	h := NewHashing(256<<20, 64, 1, 20*time.Millisecond)
	release := make(chan struct{})
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	started := make(chan struct{}, 13)
	for range 13 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = h.Do(context.Background(), func() {
				n := running.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				started <- struct{}{}
				<-release
				running.Add(-1)
			})
		}()
	}
	for range 13 {
		<-started
	}
	if err := h.Do(context.Background(), func() { t.Error("a fourteenth hash ran") }); !errors.Is(err, ErrBusy) {
		t.Fatalf("over the budget: %v", err)
	}
	close(release)
	wg.Wait()
	if peak.Load() != 13 {
		t.Fatalf("peak %d", peak.Load())
	}
	ran := false
	if err := h.Do(context.Background(), func() { ran = true }); err != nil || !ran {
		t.Fatalf("after the others: %v, ran %v", err, ran)
	}
}

// A budget smaller than one hash still lets one run, and only one.
func TestHashingRunsOneAtLeast(t *testing.T) {
	h := NewHashing(1, 64, 1, time.Millisecond)
	err := h.Do(context.Background(), func() {
		if err := h.Do(context.Background(), func() { t.Error("a second hash ran") }); !errors.Is(err, ErrBusy) {
			t.Errorf("a second hash: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("the one hash: %v", err)
	}
}

// Fewer cores than the memory allows bound the hashes too: with two, a
// third waits and gets ErrBusy.
func TestHashingIsBoundedByCores(t *testing.T) {
	h := NewHashing(256<<20, 2, 1, 20*time.Millisecond)
	release, started := make(chan struct{}), make(chan struct{}, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = h.Do(context.Background(), func() { started <- struct{}{}; <-release })
		}()
	}
	<-started
	<-started
	if err := h.Do(context.Background(), func() { t.Error("a third hash ran beside two on two cores") }); !errors.Is(err, ErrBusy) {
		t.Fatalf("over the cores: %v", err)
	}
	close(release)
	wg.Wait()
}

// At a share of one half, a slot that hashed for 40 ms rests 40 ms before
// the next hash may start on it; the caller does not wait for the rest.
func TestHashingRestsInProportion(t *testing.T) {
	h := NewHashing(256<<20, 1, 0.5, 20*time.Millisecond)
	clock := time.Unix(1_800_000_000, 0)
	h.now = func() time.Time { return clock }
	var rests []time.Duration
	var release []func()
	h.after = func(d time.Duration, f func()) { rests, release = append(rests, d), append(release, f) }

	if err := h.Do(context.Background(), func() { clock = clock.Add(40 * time.Millisecond) }); err != nil {
		t.Fatalf("the first hash: %v", err)
	}
	if len(rests) != 1 || rests[0] != 40*time.Millisecond {
		t.Fatalf("rests %v, want [40ms]", rests)
	}
	if err := h.Do(context.Background(), func() { t.Error("a hash ran on a resting slot") }); !errors.Is(err, ErrBusy) {
		t.Fatalf("on a resting slot: %v", err)
	}
	release[0]()
	ran := false
	if err := h.Do(context.Background(), func() { ran = true }); err != nil || !ran {
		t.Fatalf("after the rest: %v, ran %v", err, ran)
	}
}

// A share of one never rests: the slot is free as soon as its hash is done.
func TestHashingAtFullShareDoesNotRest(t *testing.T) {
	h := NewHashing(256<<20, 1, 1, 20*time.Millisecond)
	clock := time.Unix(1_800_000_000, 0)
	h.now = func() time.Time { return clock }
	h.after = func(time.Duration, func()) { t.Error("a slot rested at a share of one") }
	for range 2 {
		if err := h.Do(context.Background(), func() { clock = clock.Add(40 * time.Millisecond) }); err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkArgon2id(b *testing.B) {
	h := New("correct horse battery staple")
	for b.Loop() {
		h.Matches("correct horse battery staple")
	}
}
