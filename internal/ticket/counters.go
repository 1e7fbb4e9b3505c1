package ticket

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

// How rate-limit counters stay bounded without refusing everyone.
//
// A counter is a rate limit's count for one subject (an IP, an address, a
// client). Counters cannot be refused when there is no room, as markers
// are: a visitor who floods distinct subjects would then turn every new
// person away. Nor can they be dropped oldest first: a flood would then wash
// out the count of the subject it is aimed at. So counters live in a fixed
// table of sets of counterWays places each. A subject hashes to one set
// (with a salt drawn per table, or per Redis, so nobody can aim at a set);
// when the set has no free or expired place, the counter with the lowest
// count gives way, earliest expiry first among equals.
//
// Under a flood the table forgets rarely-seen subjects (the flood's own,
// which come one hit each), while a subject that is close to its limit
// keeps its count unless the three other counters of its set count as much
// as it does. Forgetting never refuses anybody: a forgotten subject counts
// from one again. What a guess must never be given back (the wrong codes
// of one operation) is counted with the secret itself (Store.Attempt).
//
// The memory table is one allocation of fixed-size places holding no
// pointers: its size is its budget, and the garbage collector does not
// scan it.
const (
	counterWays = 4
	// counterPlaceBytes is one place: tag, count and expiry.
	counterPlaceBytes = 24
)

// counterPlace is one counter: tag names the subject (0 is a free place),
// exp ends its window in Unix nanoseconds.
type counterPlace struct {
	tag uint64
	n   int64
	exp int64
}

// counterTable is the memory store's bounded counters.
type counterTable struct {
	salt   [16]byte
	mu     sync.Mutex
	places []counterPlace // len(places) = sets × counterWays
	sets   uint64
}

// newCounterTable returns a table of about budget bytes, with at least one
// set.
func newCounterTable(budget int64) *counterTable {
	sets := max(uint64(budget/(counterWays*counterPlaceBytes)), 1)
	t := &counterTable{places: make([]counterPlace, sets*counterWays), sets: sets}
	// crypto/rand.Read never fails on supported platforms (Go 1.24+).
	_, _ = rand.Read(t.salt[:])
	return t
}

// capacity is how many counters the table holds at once.
func (t *counterTable) capacity() int { return len(t.places) }

// locate returns the places of key's set and key's tag.
func (t *counterTable) locate(key string) ([]counterPlace, uint64) {
	set, tag := counterHash(t.salt[:], key, t.sets)
	i := set * counterWays
	return t.places[i : i+counterWays : i+counterWays], tag
}

// counterHash is the set (below sets) and tag (never 0) of key under salt.
func counterHash(salt []byte, key string, sets uint64) (set, tag uint64) {
	var buf [160]byte
	sum := sha256.Sum256(append(append(buf[:0], salt...), key...))
	set = binary.LittleEndian.Uint64(sum[:8]) % sets
	tag = binary.LittleEndian.Uint64(sum[8:16]) | 1
	return set, tag
}

// incr counts a hit of key, opening a window until now+window on its first,
// and returns the counter; it never fails.
func (t *counterTable) incr(key string, window, now int64) counterPlace {
	t.mu.Lock()
	defer t.mu.Unlock()
	set, tag := t.locate(key)
	if p := find(set, tag, now); p != nil {
		p.n++
		return *p
	}
	p := yielding(set, now)
	*p = counterPlace{tag: tag, n: 1, exp: now + window}
	return *p
}

// get returns key's live counter, the zero place when there is none.
func (t *counterTable) get(key string, now int64) counterPlace {
	t.mu.Lock()
	defer t.mu.Unlock()
	set, tag := t.locate(key)
	if p := find(set, tag, now); p != nil {
		return *p
	}
	return counterPlace{}
}

// reset ends key's counter.
func (t *counterTable) reset(key string, now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	set, tag := t.locate(key)
	if p := find(set, tag, now); p != nil {
		*p = counterPlace{}
	}
}

// refund takes one hit back from key's live counter, never below zero.
func (t *counterTable) refund(key string, now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	set, tag := t.locate(key)
	if p := find(set, tag, now); p != nil && p.n > 0 {
		p.n--
	}
}

// find returns the live place of tag in set, or nil.
func find(set []counterPlace, tag uint64, now int64) *counterPlace {
	for i := range set {
		if set[i].tag == tag && now < set[i].exp {
			return &set[i]
		}
	}
	return nil
}

// yielding returns the place in set a new counter takes: a free or expired
// one, or else the lowest count, the earliest expiry among equals.
func yielding(set []counterPlace, now int64) *counterPlace {
	best := &set[0]
	for i := range set {
		p := &set[i]
		if p.tag == 0 || now >= p.exp {
			return p
		}
		if p.n < best.n || (p.n == best.n && p.exp < best.exp) {
			best = p
		}
	}
	return best
}
