package ticket

import (
	"container/heap"
	"sync"
)

// markOverhead is what one marker costs besides its key: the map entry, the
// heap entry and their headers, measured (TestMarksStayWithinTheirBudget)
// and rounded up.
const markOverhead = 112

// marks is the memory store's set of markers: revoked sessions, replay
// markers, used-once markers. Unlike tickets they are never dropped to make
// room, because forgetting one would admit someone (a logged-out cookie, a
// replayed DPoP proof). The set is bounded by a byte budget and refuses new
// markers with ErrFull when it is spent; expired markers are reclaimed first.
type marks struct {
	mu     sync.RWMutex
	expiry map[string]int64 // key → expiry, Unix nanoseconds
	queue  expiryHeap       // the same keys, soonest expiry first
	used   int64
	budget int64
}

func newMarks(budget int64) *marks {
	return &marks{expiry: make(map[string]int64), budget: budget}
}

// add marks key until exp unless a live marker is there; see Store.Mark.
func (s *marks) add(key string, exp, now int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.expiry[key]; ok && now < e {
		return false, nil
	}
	// After reclaim, an expired marker under key is gone too.
	s.reclaim(now)
	cost := int64(len(key)) + markOverhead
	if s.used+cost > s.budget {
		return false, ErrFull
	}
	s.used += cost
	s.expiry[key] = exp
	heap.Push(&s.queue, markEntry{key: key, exp: exp})
	return true, nil
}

// has reports whether a live marker is under key. It sits on the guard's
// path: a read lock and a map lookup, no allocation.
func (s *marks) has(key string, now int64) bool {
	s.mu.RLock()
	e, ok := s.expiry[key]
	s.mu.RUnlock()
	return ok && now < e
}

// reclaim drops markers that have expired; the caller holds mu for writing.
// Each key has exactly one heap entry, because a marker is only added when
// none is live and expired ones are reclaimed first.
func (s *marks) reclaim(now int64) {
	for len(s.queue) > 0 && s.queue[0].exp <= now {
		e := heap.Pop(&s.queue).(markEntry)
		delete(s.expiry, e.key)
		s.used -= int64(len(e.key)) + markOverhead
	}
}

type markEntry struct {
	key string
	exp int64
}

// expiryHeap orders markers by expiry, so reclaiming costs O(log n) per
// expired marker and never a scan of the live ones.
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
