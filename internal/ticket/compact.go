package ticket

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// How the memory store packs a ticket. Every byte counts a million times
// over: a pending link is two entries (the ticket and its owner's
// pointer), each with a 23-byte head in the ring and a 4-byte slot in the
// index (see ticketTable). Keys and pointers shrink to what their job
// needs; the value a caller stores is kept as it is.

// compactKeyBytes is the length of the key the ticket table holds for a
// ticket key.
const compactKeyBytes = 16

// compactKeys turns the keys the memory store is given (a kind, a colon and
// the 64-hex-digit SHA-256 of a secret or of an email: 69 to 72 bytes) into
// 16-byte keys for the ticket table.
//
// A compact key is the first 128 bits of SHA-256(salt ‖ key), with a salt
// drawn from crypto/rand when the store is made, so an attacker can neither
// compute nor aim at any compact key, not even offline:
//
//   - Guessing a secret finds a live ticket only if its whole compact key
//     matches one, since the table compares the stored key on every read:
//     a chance of n/2^128 per guess among n live tickets (2^-108 for a
//     million), where guessing the 256-bit secret itself was out of reach
//     anyway.
//   - Two keys sharing a compact key by chance, the only way a ticket could
//     be read or replaced under another's key, has a chance of about
//     n²/2^129 among n keys: 2^-89 for two million.
//   - The table indexes by 64 bits, the first 8 bytes of the compact key.
//     On a collision of those, a Put replaces the other entry and an
//     owner's pointer deletes it: a ticket is dropped early, which the
//     Store allows (its owner asks for a new link) and which admits nobody.
//     By chance that is about n/2^64 per write; on purpose, not at all:
//     with an unknown salt, choosing emails that collide with someone
//     else's pointer, which the plain SHA-256 of known emails would allow
//     with 2^64 work, cannot be aimed.
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
func (c compactKeys) of(key string) [compactKeyBytes]byte {
	// Keys are short: salt and key fit a buffer on the stack.
	var buf [128]byte
	sum := sha256.Sum256(append(append(buf[:0], c.salt[:]...), key...))
	return [compactKeyBytes]byte(sum[:compactKeyBytes])
}

// pointerTo returns what an owner's entry holds to find its ticket again:
// the first 8 bytes of the ticket's compact key, by which the table
// indexes it. The pointer is only ever used to delete the ticket, and the
// table holds one entry at most for any first 8 bytes, so these delete
// exactly what the whole compact key would.
func pointerTo(compactKey *[compactKeyBytes]byte) []byte {
	return compactKey[:8]
}

// A ticket's expiry is stored in its first 4 bytes: the count of 10 ms
// ticks since the Unix epoch, modulo 2^32, which wraps every 497 days. An
// entry is live while its expiry is ahead of the current tick, compared as
// the signed difference of the two (serial number arithmetic, RFC 1982);
// that is right while every stored expiry is within 248 days (2^31 ticks)
// of now. No stored expiry is more than maxLifetime (31 days) ahead, and
// none more than 31 days behind: the table drops every entry at its ring's
// tail that has expired before each use, and everything when it was not
// used for maxLifetime (see ticketTable.sweep).
//
// A tick of 1 ms would wrap every 49.7 days, less than the 62 days between
// the furthest expiry ahead and the furthest behind; whole seconds would
// lose the sub-second ttls that the store contract tests (Redis, too,
// expires to the millisecond). A ticket expires at the start of the tick
// its deadline falls in: up to 10 ms early, never late.
const (
	expiryBytes = 4
	expiryTick  = 10 * time.Millisecond
)

// After the expiry, one byte counts the attempts made at the ticket
// (Store.Attempt), so that the count is evicted only with the ticket it
// guards; the caller's value follows.
const headerBytes = expiryBytes + 1

func tick(t time.Time) uint32 { return uint32(t.UnixNano() / int64(expiryTick)) }

// putExpiry writes deadline as the expiry at the start of entry.
func putExpiry(entry []byte, deadline time.Time) {
	binary.BigEndian.PutUint32(entry, tick(deadline))
}

// liveAt reports whether entry, which starts with its expiry, is live at
// now.
func liveAt(entry []byte, now time.Time) bool {
	return int32(binary.BigEndian.Uint32(entry)-tick(now)) > 0
}
