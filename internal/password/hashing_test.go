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
	h := NewHashing(256<<20, 64, 20*time.Millisecond)
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
	h := NewHashing(1, 64, time.Millisecond)
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
	h := NewHashing(256<<20, 2, 20*time.Millisecond)
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

func BenchmarkArgon2id(b *testing.B) {
	h := New("correct horse battery staple")
	for b.Loop() {
		h.Matches("correct horse battery staple")
	}
}
