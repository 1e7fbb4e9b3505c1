package ticket

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// ErrStale is returned by a Redis store's Revoked when its revocation feed
// has not completed a read of the stream for longer than StaleAfter (Redis
// down, network cut): a revocation made on another instance since then may
// be missing, so the caller must refuse the session, not admit it. It clears
// by itself once the feed reads again.
var ErrStale = errors.New("ticket: revocations may be stale, the redis feed is behind")

const (
	// feedBlock is how long one XREAD waits for new revocations. Every
	// read, even an empty one, vouches for the local set, so it also paces
	// the staleness clock.
	feedBlock = time.Second
	// feedPage is the most entries one XRANGE or XREAD returns; a full page
	// means more may be waiting, so it does not vouch for the set.
	feedPage = 1000
	// The feed retries a failed read after a backoff that doubles from
	// feedMinBackoff to feedMaxBackoff: prompt after a blip, no busy loop
	// through an outage, and well inside the default StaleAfter.
	feedMinBackoff = 50 * time.Millisecond
	feedMaxBackoff = time.Second
	// revocationRetention is how far back the stream is trimmed on each
	// Revoke. Stream ids are Redis's clock in ms, so entries older than the
	// longest ttl have expired; the extra day absorbs clock skew between
	// this host and Redis.
	revocationRetention = maxLifetime + 24*time.Hour
)

// Revoke implements Revocations. It appends {key, exp} to the stream
// <prefix>revocations with XADD (one command, trimming entries older than
// any ttl with MINID ~), then adds key to this instance's set at once, so
// the caller's own next request already sees it; the other instances read it
// from the stream within StaleAfter. ttl is at most 31 days. ErrFull means
// this instance's set has no room: the revocation is stored for the others,
// but this instance will answer ErrStale until room frees up, because its
// feed will not skip an entry it could not keep.
func (r *Redis) Revoke(ctx context.Context, key string, ttl time.Duration) error {
	if ttl <= 0 || ttl > maxLifetime {
		return fmt.Errorf("ticket: revocation ttl %s out of range (0, %s]", ttl, maxLifetime)
	}
	return r.revoke(ctx, key, 0, ttl)
}

// RevokeBefore implements Revocations as Revoke does, with the cut-off in
// the entry: {key, exp, before}. Every instance, this one at once and the
// others from the stream, merges it into its set by max, so entries that
// reach the stream in another order than their cut-offs (two instances
// revoking at once) end at the latest cut-off and the latest expiry.
func (r *Redis) RevokeBefore(ctx context.Context, key string, before time.Time, ttl time.Duration) error {
	if err := checkRevokeBefore(before, ttl); err != nil {
		return err
	}
	return r.revoke(ctx, key, before.UnixNano(), ttl)
}

// revoke appends a revocation of key to the stream and keeps it in this
// instance's set: a marker when before is 0, else a cut-off in Unix
// nanoseconds.
func (r *Redis) revoke(ctx context.Context, key string, before int64, ttl time.Duration) error {
	now := r.now()
	// Rounded up: a revocation may outlive its ttl by a millisecond, never
	// end before it.
	expMs := (now.Add(ttl).UnixNano() + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	values := []string{"key", key, "exp", strconv.FormatInt(expMs, 10)}
	if before != 0 {
		values = append(values, "before", strconv.FormatInt(before, 10))
	}
	var cmd *redis.StringCmd
	ack := r.write(ctx, r.stream, func(c redis.Cmdable) {
		cmd = c.XAdd(ctx, &redis.XAddArgs{
			Stream: r.stream,
			MinID:  strconv.FormatInt(now.Add(-revocationRetention).UnixMilli(), 10),
			Approx: true,
			Values: values,
		})
	})
	if err := cmd.Err(); err != nil {
		return redisError("XADD", err)
	}
	// Kept here even when the replicas did not acknowledge it: this
	// instance refuses the session at once either way.
	if err := r.keep(revocation{key: key, exp: expMs * int64(time.Millisecond), before: before}, now.UnixNano()); err != nil {
		return fmt.Errorf("ticket: local revocation set: %w", err)
	}
	return ack
}

// Revoked implements Revocations from the local set alone: an atomic load,
// a read lock and a map lookup, no round trip and no allocation. It answers
// ErrStale when the feed's last complete read is older than StaleAfter,
// because a set that may miss revocations cannot vouch for anyone.
func (r *Redis) Revoked(key string) (bool, error) {
	now, err := r.current()
	if err != nil {
		return false, err
	}
	_, ok := r.revoked.get(key, now)
	return ok, nil
}

// RevokedBefore implements Revocations from the local set alone, as Revoked
// does, with the same ErrStale.
func (r *Redis) RevokedBefore(key string) (time.Time, bool, error) {
	now, err := r.current()
	if err != nil {
		return time.Time{}, false, err
	}
	e, ok := r.revoked.get(key, now)
	if !ok {
		return time.Time{}, false, nil
	}
	return time.Unix(0, e.n), true, nil
}

// current returns the time in Unix nanoseconds, or ErrStale when the feed's
// last complete read is older than StaleAfter.
func (r *Redis) current() (int64, error) {
	now := r.now().UnixNano()
	if now-r.syncedAt.Load() > r.staleAfter {
		return 0, ErrStale
	}
	return now, nil
}

// load reads the whole stream with XRANGE, page by page, into the local
// set and returns the id of the last entry read, from which the feed goes
// on; "0-0" for an empty stream.
func (r *Redis) load(ctx context.Context) (string, error) {
	lastID, start := "0-0", "-"
	for {
		began := r.now()
		page, err := r.client.XRangeN(ctx, r.stream, start, "+", feedPage).Result()
		if err != nil {
			return "", redisError("XRANGE revocations", err)
		}
		if err := r.apply(page, &lastID); err != nil {
			return "", err
		}
		if len(page) < feedPage {
			r.synced(began)
			return lastID, nil
		}
		start = "(" + lastID
	}
}

// follow keeps the local set current until ctx ends: it reads the entries
// after lastID with XREAD BLOCK, and after a failure waits a capped backoff
// and reads again from the same lastID, or from the stream's start if a
// failover or a restart left the stream ending before it (see rewind); go-redis redials by itself, and
// under Sentinel asks where the primary now is. So no revocation added
// while Redis was away, or that reached the new primary, is skipped.
func (r *Redis) follow(ctx context.Context, lastID string) {
	defer close(r.feedDone)
	backoff := feedMinBackoff
	failing := false
	for {
		var err error
		if failing {
			// Redis may be another one now (a failover, a restart): read
			// its stream again if it ends before lastID. Until that can
			// be asked, nothing is read.
			err = r.rewind(ctx, &lastID)
		}
		if err == nil {
			err = r.read(ctx, &lastID)
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if failing {
				r.log.Info("revocation feed restored")
			}
			failing, backoff = false, feedMinBackoff
			continue
		}
		if !failing {
			r.log.Error("the revocation feed is failing; sessions are refused (503) once it is "+time.Duration(r.staleAfter).String()+" behind", zap.Error(err))
		}
		failing = true
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, feedMaxBackoff)
	}
}

// read does one XREAD of the entries after lastID. A blocked read's own
// deadline (feedBlock plus the read timeout) keeps a silent network from
// holding the feed for go-redis's longer default.
func (r *Redis) read(ctx context.Context, lastID *string) error {
	ctx, cancel := context.WithTimeout(ctx, feedBlock+r.readTimeout)
	defer cancel()
	began := r.now()
	streams, err := r.client.XRead(ctx, &redis.XReadArgs{
		Streams: []string{r.stream, *lastID},
		Count:   feedPage,
		Block:   feedBlock,
	}).Result()
	if errors.Is(err, redis.Nil) { // nothing new within feedBlock
		r.synced(began)
		return nil
	}
	if err != nil {
		return redisError("XREAD revocations", err)
	}
	n := 0
	for _, s := range streams {
		if err := r.apply(s.Messages, lastID); err != nil {
			return err
		}
		n += len(s.Messages)
	}
	if n < feedPage {
		r.synced(began)
	}
	return nil
}

// synced records that the local set held every revocation stored before
// began: the time a complete read was sent, not received, so the bound on
// what the set may miss stays conservative.
func (r *Redis) synced(began time.Time) {
	r.syncedAt.Store(began.UnixNano())
}

// apply adds the stream entries to the local set, skipping expired ones,
// and moves lastID past each entry it has dealt with. It stops at an entry
// the set has no room for (ErrFull), leaving lastID before it, so the feed
// retries that entry instead of losing it.
func (r *Redis) apply(msgs []redis.XMessage, lastID *string) error {
	now := r.now().UnixNano()
	for _, m := range msgs {
		rev, err := parseRevocation(m)
		switch {
		case err != nil:
			// Not written by Revoke or RevokeBefore; there is nothing in it
			// to enforce.
			r.log.Error("skipping a malformed revocation entry", zap.String("id", m.ID), zap.Error(err))
		case rev.exp > now:
			if err := r.keep(rev, now); err != nil {
				return fmt.Errorf("ticket: local revocation set: %w", err)
			}
		}
		*lastID = m.ID
	}
	return nil
}

// revocation is one entry of the stream, times in Unix nanoseconds.
type revocation struct {
	key    string
	exp    int64
	before int64 // the cut-off of a RevokeBefore; 0 for a Revoke
}

// keep adds rev to the local set: a marker stays as the first one put it,
// a cut-off is merged by max (see marks.raise), so applying an entry twice
// (the feed reading back this instance's own, or retrying after ErrFull)
// changes nothing.
func (r *Redis) keep(rev revocation, now int64) error {
	if rev.before == 0 {
		_, err := r.revoked.add(rev.key, 1, rev.exp, now)
		return err
	}
	return r.revoked.raise(rev.key, rev.before, rev.exp, now)
}

// parseRevocation reads an entry written by revoke.
func parseRevocation(m redis.XMessage) (revocation, error) {
	key, ok := m.Values["key"].(string)
	if !ok || key == "" {
		return revocation{}, errors.New("ticket: revocation entry without a key")
	}
	raw, _ := m.Values["exp"].(string)
	expMs, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return revocation{}, fmt.Errorf("ticket: revocation entry with a bad exp: %w", err)
	}
	rev := revocation{key: key, exp: expMs * int64(time.Millisecond)}
	if raw, ok := m.Values["before"]; ok {
		s, _ := raw.(string)
		if rev.before, err = strconv.ParseInt(s, 10, 64); err != nil || rev.before <= 0 {
			return revocation{}, fmt.Errorf("ticket: revocation entry with a bad cut-off %q", s)
		}
	}
	return rev, nil
}
