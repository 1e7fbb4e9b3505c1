package ticket

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// How the memory store packs a ticket for bigcache. Every byte counts a
// million times over: a pending link is two entries (the ticket and its
// owner's pointer), each with bigcache's 18-byte header, a byte of length
// in its shard's queue and a place in its shard's index (a Go map of 8-byte
// hashes). Keys and pointers shrink to what their job needs, and values are
// packed (see pack).

// compactKeyBytes is the length of the key the memory store gives bigcache
// for a ticket key.
const compactKeyBytes = 16

// compactKeys turns the keys the memory store is given (a kind, a colon and
// the 64-hex-digit SHA-256 of a secret or of an email: 69 to 72 bytes) into
// 16-byte keys for bigcache.
//
// A compact key is the first 128 bits of SHA-256(salt ‖ key), with a salt
// drawn from crypto/rand when the store is made, so an attacker can neither
// compute nor aim at any compact key, not even offline:
//
//   - Guessing a secret finds a live ticket only if its whole compact key
//     matches one, since bigcache compares the stored key on every read: a
//     chance of n/2^128 per guess among n live tickets (2^-108 for a
//     million), where guessing the 256-bit secret itself was out of reach
//     anyway.
//   - Two keys sharing a compact key by chance, the only way a ticket could
//     be read or replaced under another's key, has a chance of about
//     n²/2^129 among n keys: 2^-89 for two million.
//   - bigcache indexes by 64 bits, the first 8 bytes of the compact key (see
//     prefixHasher). On a collision of those, a Set replaces the other entry
//     and a Delete removes it (bigcache deletes by hash alone): a ticket is
//     dropped early, which the Store allows (its owner asks for a new link)
//     and which admits nobody. By chance that is about n/2^64 per write; on
//     purpose, not at all: with an unknown salt, choosing emails that
//     collide with someone else's pointer, which the plain SHA-256 of
//     known emails would allow with 2^64 work, cannot be aimed.
//
// The salt lives only in this process's memory, like the tickets, so no
// compact key ever has to match across processes or restarts.
type compactKeys struct{ salt [16]byte }

func newCompactKeys() compactKeys {
	var c compactKeys
	// crypto/rand.Read never fails on supported platforms (Go 1.24+).
	_, _ = rand.Read(c.salt[:])
	return c
}

// of returns key's compact key.
func (c compactKeys) of(key string) string {
	// Keys are short: salt and key fit a buffer on the stack.
	var buf [128]byte
	sum := sha256.Sum256(append(append(buf[:0], c.salt[:]...), key...))
	return string(sum[:compactKeyBytes])
}

// prefixHasher is bigcache's Hasher for compact keys and pointers: their
// first 8 bytes are already uniform and unknown to an attacker, so hashing
// them again (bigcache's default is FNV-1a over the whole key) would add
// work and no protection.
type prefixHasher struct{}

func (prefixHasher) Sum64(key string) uint64 {
	// Compact keys and pointers are 8 bytes or more; a shorter key, which
	// only a value that Put, not PutOwned, stored under an owner key could
	// make, is padded with zeros rather than panic.
	var b [8]byte
	copy(b[:], key)
	return binary.LittleEndian.Uint64(b[:])
}

// pointerTo returns what an owner's entry holds to find its ticket again:
// the first 8 bytes of the ticket's compact key, which are its bigcache
// hash. The pointer is only ever used to delete the ticket, and bigcache
// deletes by hash alone (it compares keys on reads only), so these 8 bytes
// delete exactly what the whole compact key would. Should a bigcache
// release compare keys on delete, superseded tickets would stay live, and
// the store contract's test of PutOwned fails.
func pointerTo(compactKey string) []byte {
	return []byte(compactKey[:8])
}

// A ticket's expiry is stored in its first 5 bytes, big-endian: the count
// of 10 ms ticks since the Unix epoch, which 40 bits hold until the year
// 2318. It is absolute, not modulo anything, so an expired entry stays
// expired however long bigcache keeps it: bigcache drops an entry only when
// its shard needs the room or, on a write to the shard, once the entry is
// older than its life window by bigcache's own (wall) clock, neither of
// which a store's clock has to agree with.
//
// Whole seconds, bigcache's own unit, would lose the sub-second ttls that
// the store contract tests (Redis, too, expires to the millisecond). A
// ticket expires at the start of the tick its deadline falls in: up to
// 10 ms early, never late.
const (
	expiryBytes = 5
	expiryTick  = 10 * time.Millisecond
)

// After the expiry, one byte counts the attempts made at the ticket
// (Store.Attempt), so that the count is evicted only with the ticket it
// guards; the caller's value, packed, follows.
const headerBytes = expiryBytes + 1

func tick(t time.Time) uint64 { return uint64(t.UnixNano() / int64(expiryTick)) }

// putExpiry writes deadline as the expiry at the start of entry.
func putExpiry(entry []byte, deadline time.Time) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], tick(deadline))
	copy(entry[:expiryBytes], b[8-expiryBytes:])
}

// liveAt reports whether entry, which starts with its expiry, is live at
// now.
func liveAt(entry []byte, now time.Time) bool {
	var b [8]byte
	copy(b[8-expiryBytes:], entry[:expiryBytes])
	return binary.BigEndian.Uint64(b[:]) > tick(now)
}
