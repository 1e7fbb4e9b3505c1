package ticket

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"time"
)

// ticketTable holds the memory store's tickets in two fixed blocks of
// memory that hold no pointers, allocated once at the size max_memory gives
// them (see allocate): a ring of entries written one after the other, the
// oldest overwritten first when it is full, and an index of 4-byte slots
// (open addressing, linear probing) that point into the ring. A pending
// link, a ticket and its owner's pointer, takes about 120 bytes of ring
// and 11 of index, and no byte of it is on the Go heap.
//
// An entry in the ring is
//
//	length (2 bytes, big-endian, the whole entry) | compact key (16) |
//	expiry (4) | attempts (1) | the caller's value
//
// and never wraps around the ring's end: an entry that would is written at
// the start, after a length of zero (or fewer than entryHead bytes) that
// marks the rest as padding.
//
// A slot is 0 when free, else its entry's offset in the ring plus one. It
// keeps no hash of its own: its entry's key is read from the ring, which
// costs a lookup a cache miss or two and the index three quarters of its
// size. A slot's home is given by the first 8 bytes of the compact key (see
// compactKeys for why they are uniform and unknown to an attacker), and no
// two slots hold keys that share them: setting a key replaces whatever
// entry shares its first 8 bytes, as bigcache, which the store used
// before, did.
//
// Deleted and replaced entries stay in the ring, unindexed, until the ring
// comes round to them. Nothing here locks: the Memory store's mutex guards
// every call.
type ticketTable struct {
	ring  []byte
	slots []uint32
	// head and tail count the bytes ever written and evicted; an entry
	// lies at its position modulo len(ring). The live part of the ring is
	// [tail, head).
	head, tail uint64
	// entries is the number of slots in use, at most maxEntries (three
	// quarters of them, so that probes stay short).
	entries, maxEntries int
	free                func()
}

const (
	entryLenBytes = 2
	// entryHead is an entry's length before its value.
	entryHead = entryLenBytes + compactKeyBytes + headerBytes
	// maxValueBytes is the largest value a ticket holds; the ring holds
	// entries up to a quarter of its size, so that padding never keeps an
	// entry out.
	maxValueBytes = math.MaxUint16 - entryHead
)

// newTicketTable returns a table of about budget bytes: a twelfth for the
// index, the rest for the ring.
func newTicketTable(budget int64) (*ticketTable, error) {
	nslots := max(budget/12/4, 16)
	ringBytes := min(budget-nslots*4, math.MaxUint32-1)
	ring, freeRing, err := allocate[byte](int(ringBytes))
	if err != nil {
		return nil, err
	}
	slots, freeSlots, err := allocate[uint32](int(nslots))
	if err != nil {
		freeRing()
		return nil, err
	}
	return &ticketTable{
		ring: ring, slots: slots, maxEntries: int(nslots) * 3 / 4,
		free: func() { freeRing(); freeSlots() },
	}, nil
}

// prefixOf is the first 8 bytes of a compact key, which pick its slot.
func prefixOf(key []byte) uint64 { return binary.LittleEndian.Uint64(key) }

// home is the first slot a key with prefix p is looked for in.
func (t *ticketTable) home(p uint64) int {
	hi, _ := bits.Mul64(p, uint64(len(t.slots)))
	return int(hi)
}

func (t *ticketTable) next(i int) int {
	if i++; i == len(t.slots) {
		return 0
	}
	return i
}

// keyAt is the compact key of the entry at offset o.
func (t *ticketTable) keyAt(o int) []byte {
	return t.ring[o+entryLenBytes : o+entryLenBytes+compactKeyBytes]
}

// find returns the slot of the entry whose key starts with p, or false and
// the free slot where such an entry would go.
func (t *ticketTable) find(p uint64) (int, bool) {
	i := t.home(p)
	for t.slots[i] != 0 {
		if prefixOf(t.keyAt(int(t.slots[i]-1))) == p {
			return i, true
		}
		i = t.next(i)
	}
	return i, false
}

// lookup returns the entry under ck, from its expiry on (its header and
// value, in the ring: valid until the next change), and its slot; expired
// entries included.
func (t *ticketTable) lookup(ck *[compactKeyBytes]byte) ([]byte, int, bool) {
	i, ok := t.find(prefixOf(ck[:]))
	if !ok {
		return nil, 0, false
	}
	o := int(t.slots[i] - 1)
	if string(t.keyAt(o)) != string(ck[:]) {
		return nil, 0, false
	}
	n := int(binary.BigEndian.Uint16(t.ring[o:]))
	return t.ring[o+entryLenBytes+compactKeyBytes : o+n], i, true
}

// remove frees slot i, shifting the slots after it back where their probe
// allows (backward-shift deletion), so that no probe ever stops early.
func (t *ticketTable) remove(i int) {
	for j := t.next(i); t.slots[j] != 0; j = t.next(j) {
		k := t.home(prefixOf(t.keyAt(int(t.slots[j] - 1))))
		// The entry at j stays if its home lies cyclically in (i, j].
		if (i <= j && i < k && k <= j) || (i > j && (i < k || k <= j)) {
			continue
		}
		t.slots[i] = t.slots[j]
		i = j
	}
	t.slots[i] = 0
	t.entries--
}

// removePrefix removes the entry whose key starts with p, if any.
func (t *ticketTable) removePrefix(p uint64) {
	if i, ok := t.find(p); ok {
		t.remove(i)
	}
}

// set stores value under ck until the expiry tick exp, replacing the entry
// that shares ck's first 8 bytes, and evicting the oldest entries if the
// ring or the index has no room.
func (t *ticketTable) set(ck *[compactKeyBytes]byte, exp uint32, value []byte) error {
	size := entryHead + len(value)
	if len(value) > maxValueBytes || size > len(t.ring)/4 {
		return fmt.Errorf("ticket: a value of %d bytes is too large for the memory store", len(value))
	}
	t.removePrefix(prefixOf(ck[:]))
	ringLen := uint64(len(t.ring))
	pad := uint64(0)
	if o := t.head % ringLen; o+uint64(size) > ringLen {
		pad = ringLen - o
	}
	// pad < size <= ringLen/4, so an emptied ring always has room.
	for t.head+pad+uint64(size)-t.tail > ringLen || t.entries >= t.maxEntries {
		t.evict()
	}
	if pad > 0 {
		if pad >= entryLenBytes {
			binary.BigEndian.PutUint16(t.ring[t.head%ringLen:], 0)
		}
		t.head += pad
	}
	o := int(t.head % ringLen)
	e := t.ring[o : o+size]
	binary.BigEndian.PutUint16(e, uint16(size))
	copy(e[entryLenBytes:], ck[:])
	h := e[entryLenBytes+compactKeyBytes:]
	binary.BigEndian.PutUint32(h, exp)
	h[expiryBytes] = 0
	copy(h[headerBytes:], value)
	i, _ := t.find(prefixOf(ck[:]))
	t.slots[i] = uint32(o) + 1
	t.entries++
	t.head += uint64(size)
	return nil
}

// padding reports whether the ring holds padding at offset o: too little
// room for an entry before the end, or a length of zero.
func (t *ticketTable) padding(o int) bool {
	return o+entryHead > len(t.ring) || binary.BigEndian.Uint16(t.ring[o:]) == 0
}

// evict drops what lies at the tail of the ring: padding, or the oldest
// entry, which leaves the index if it is still there.
func (t *ticketTable) evict() {
	ringLen := uint64(len(t.ring))
	o := int(t.tail % ringLen)
	if t.padding(o) {
		t.tail += ringLen - uint64(o)
		return
	}
	for i := t.home(prefixOf(t.keyAt(o))); t.slots[i] != 0; i = t.next(i) {
		if int(t.slots[i]-1) == o {
			t.remove(i)
			break
		}
	}
	t.tail += uint64(binary.BigEndian.Uint16(t.ring[o:]))
}

// sweep evicts the entries at the tail that have expired at now. It keeps
// every entry in the ring within maxLifetime of now, written or expiring,
// which the expiry's 32-bit ticks need (see compact.go): entries are
// written in order, each expires at most maxLifetime after it was
// written, so once the oldest is live, every entry was written less than
// maxLifetime ago. The caller calls it before every use, and reset
// instead when the store has not been used for longer than maxLifetime.
func (t *ticketTable) sweep(now time.Time) {
	ringLen := uint64(len(t.ring))
	for t.tail != t.head {
		o := int(t.tail % ringLen)
		if !t.padding(o) && liveAt(t.ring[o+entryLenBytes+compactKeyBytes:], now) {
			return
		}
		t.evict()
	}
}

// reset drops every entry. An empty index is left as it is: clearing it
// would make every page of it resident for nothing.
func (t *ticketTable) reset() {
	if t.entries > 0 {
		clear(t.slots)
	}
	t.head, t.tail, t.entries = 0, 0, 0
}
