package ticket

import (
	"container/heap"
	"sync"
)

// markOverhead is what one entry costs besides its key: the map entry, the
// heap entry and their headers, measured (TestMarksStayWithinTheirBudget)
// and rounded up.
const markOverhead = 120

// marks is a bounded set of expiring entries, each with a number: the
// memory store keeps its markers (revoked sessions, used DPoP proofs) and
// revocation cut-offs (the number, in Unix nanoseconds) in one, and the
// Redis store its local copy of the revocations. Unlike tickets, entries
// are never dropped to make room, because forgetting one would admit
// someone (a logged-out cookie, a replayed proof). The set is bounded by a
// byte budget and refuses new entries with ErrFull when it is spent;
// expired entries are reclaimed first.
type marks struct {
	mu      sync.RWMutex
	entries map[string]markValue
	queue   expiryHeap // the same keys, soonest expiry first
	used    int64
	budget  int64
}

type markValue struct {
	exp int64 // Unix nanoseconds
	n   int64 // 1 for a marker, a cut-off in Unix nanoseconds
}

func newMarks(budget int64) *marks {
	return &marks{entries: make(map[string]markValue), budget: budget}
}

// add creates key with n until exp unless a live entry is there, and
// reports whether it did; see Store.Mark.
func (s *marks) add(key string, n, exp, now int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key]; ok && now < e.exp {
		return false, nil
	}
	return true, s.insert(key, markValue{exp: exp, n: n}, now)
}

// raise stores n until exp under key or, when a live entry is there, keeps
// the later of each: the larger n and the later expiry; see
// Revocations.RevokeBefore. A later expiry is paid for like a new entry,
// because the heap entry pushed with the earlier one gives the entry's cost
// back when it comes up while the entry lives on: the later expiry needs a
// heap entry, and a cost, of its own. So it can answer ErrFull, leaving the
// entry as it was; raising n alone needs no room.
func (s *marks) raise(key string, n, exp, now int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok || now >= e.exp {
		return s.insert(key, markValue{exp: exp, n: n}, now)
	}
	if exp > e.exp {
		if err := s.charge(key, exp, now); err != nil {
			return err
		}
		e.exp = exp
	}
	e.n = max(e.n, n)
	s.entries[key] = e
	return nil
}

// insert stores a new entry; the caller holds mu for writing and has
// checked that no live entry is under key.
func (s *marks) insert(key string, v markValue, now int64) error {
	if err := s.charge(key, v.exp, now); err != nil {
		return err
	}
	s.entries[key] = v
	return nil
}

// charge pays for a heap entry that expires key at exp and pushes it; the
// caller holds mu for writing and stores the entry itself.
func (s *marks) charge(key string, exp, now int64) error {
	// After reclaim, an expired entry under key is gone too.
	s.reclaim(now)
	cost := int64(len(key)) + markOverhead
	if s.used+cost > s.budget {
		return ErrFull
	}
	s.used += cost
	heap.Push(&s.queue, markEntry{key: key, exp: exp})
	return nil
}

// get returns the live entry under key. It sits on the guard's path: a read
// lock and a map lookup, no allocation.
func (s *marks) get(key string, now int64) (markValue, bool) {
	s.mu.RLock()
	e, ok := s.entries[key]
	s.mu.RUnlock()
	if !ok || now >= e.exp {
		return markValue{}, false
	}
	return e, true
}

// reclaim drops entries that have expired; the caller holds mu for writing.
// Every charge pushed one heap entry and paid for it, so each popped heap
// entry gives its cost back. The map entry goes only when it is not live:
// after an expired entry was set again, the key may hold a newer entry with
// a heap entry of its own, and after a raise, a later expiry with one.
func (s *marks) reclaim(now int64) {
	for len(s.queue) > 0 && s.queue[0].exp <= now {
		e := heap.Pop(&s.queue).(markEntry)
		if cur, ok := s.entries[e.key]; ok && cur.exp <= now {
			delete(s.entries, e.key)
		}
		s.used -= int64(len(e.key)) + markOverhead
	}
}

type markEntry struct {
	key string
	exp int64
}

// expiryHeap orders entries by expiry, so reclaiming costs O(log n) per
// expired entry and never a scan of the live ones.
type expiryHeap []markEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].exp < h[j].exp }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(markEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
