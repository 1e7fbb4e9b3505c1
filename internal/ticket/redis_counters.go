package ticket

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis store's counters are the memory store's table (counterTable),
// in Redis: a fixed number of sets, each one hash under its own key with a
// tag, a count and an expiry per place, so that a flood of distinct
// subjects cannot grow Redis past Counters places and run a noeviction
// Redis out of memory for every write. One script does every counter
// operation on one key, which Redis runs alone, so each is atomic across
// instances; time is Redis's own (TIME), so instances whose clocks differ
// agree on every window.

// counterScript is one counter operation on the set KEYS[1] for the tag
// ARGV[1]: ARGV[2] is "incr" (ARGV[3] the window in ms), "get", "reset" or
// "refund". It returns {n, ms left}, {0, 0} for no live counter.
var counterScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tag, op = ARGV[1], ARGV[2]
local f = redis.call('HGETALL', KEYS[1])
local h = {}
for i = 1, #f, 2 do h[f[i]] = f[i + 1] end
local function exp(i) return tonumber(h['e' .. i] or '0') end
for i = 0, 3 do
	if h['t' .. i] == tag and now < exp(i) then
		local n = tonumber(h['n' .. i])
		if op == 'get' then
			return {n, exp(i) - now}
		elseif op == 'reset' then
			redis.call('HDEL', KEYS[1], 't' .. i, 'n' .. i, 'e' .. i)
			return {0, 0}
		elseif op == 'refund' then
			n = math.max(n - 1, 0)
		else
			n = n + 1
		end
		redis.call('HSET', KEYS[1], 'n' .. i, n)
		return {n, exp(i) - now}
	end
end
if op ~= 'incr' then
	return {0, 0}
end
local pick, pn, pe
for i = 0, 3 do
	if not h['t' .. i] or now >= exp(i) then
		pick = i
		break
	end
	local n = tonumber(h['n' .. i])
	if pick == nil or n < pn or (n == pn and exp(i) < pe) then
		pick, pn, pe = i, n, exp(i)
	end
end
local win = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 't' .. pick, tag, 'n' .. pick, 1, 'e' .. pick, now + win)
local last = now + win
for i = 0, 3 do
	if i ~= pick and exp(i) > last then last = exp(i) end
end
redis.call('PEXPIRE', KEYS[1], last - now)
return {1, win}
`)

// counter runs counterScript for key.
func (r *Redis) counter(ctx context.Context, key, op string, window time.Duration) (Count, error) {
	set, tag := counterHash(r.counterSalt, key, r.counterSets)
	keys := []string{r.prefix + "counters:" + strconv.FormatUint(set, 10)}
	v, err := counterScript.Run(ctx, r.client, keys, strconv.FormatUint(tag, 16), op, roundMillis(window).Milliseconds()).Int64Slice()
	if err != nil {
		return Count{}, redisError("counter script ("+op+")", err)
	}
	if len(v) != 2 {
		return Count{}, fmt.Errorf("ticket: redis counter script returned %d values, want 2", len(v))
	}
	return Count{N: v[0], ResetIn: time.Duration(max(v[1], 0)) * time.Millisecond}, nil
}

// Incr implements Store.
func (r *Redis) Incr(ctx context.Context, key string, window time.Duration) (Count, error) {
	if window <= 0 {
		return Count{}, fmt.Errorf("ticket: counter window %s must be positive", window)
	}
	return r.counter(ctx, key, "incr", window)
}

// Count implements Store.
func (r *Redis) Count(ctx context.Context, key string) (Count, error) {
	return r.counter(ctx, key, "get", 0)
}

// Reset implements Store.
func (r *Redis) Reset(ctx context.Context, key string) error {
	_, err := r.counter(ctx, key, "reset", 0)
	return err
}

// Refund implements Store.
func (r *Redis) Refund(ctx context.Context, key string) error {
	_, err := r.counter(ctx, key, "refund", 0)
	return err
}

// loadCounterSalt reads the salt that places subjects in sets, storing a
// new one from crypto/rand if Redis has none, so that every instance
// places a subject in the same set and nobody outside can aim at one. A
// Redis that loses it (a restart without persistence) gets a new one from
// the next instance to start: counts are then forgotten, and instances
// started before count apart from it until they restart too.
func (r *Redis) loadCounterSalt(ctx context.Context) error {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	key := r.prefix + "counter-salt"
	if err := r.client.SetNX(ctx, key, hex.EncodeToString(b), 0).Err(); err != nil {
		return redisError("SET NX counter salt", err)
	}
	salt, err := r.client.Get(ctx, key).Result()
	if err != nil {
		return redisError("GET counter salt", err)
	}
	r.counterSalt = []byte(salt)
	return nil
}

// attemptScript counts an attempt at the ticket KEYS[1] in KEYS[2], which
// expires with the ticket, up to the limit ARGV[1]. It returns the
// attempt's number (limit+1 past the limit), 0 when there is no ticket.
var attemptScript = redis.NewScript(`
local left = redis.call('PTTL', KEYS[1])
if left == -2 then
	return 0
end
local limit = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') >= limit then
	return limit + 1
end
local n = redis.call('INCR', KEYS[2])
if n == 1 and left > 0 then
	redis.call('PEXPIRE', KEYS[2], left)
end
return n
`)

// Attempt implements Store with one Lua script (PTTL, GET, INCR, PEXPIRE),
// atomic because Redis runs a script alone.
func (r *Redis) Attempt(ctx context.Context, key string, limit int64) (int64, error) {
	if err := checkAttemptLimit(limit); err != nil {
		return 0, err
	}
	keys := []string{r.prefix + key, r.prefix + key + ":attempts"}
	var cmd *redis.Cmd
	ack := r.write(ctx, keys[0], func(c redis.Cmdable) { cmd = runScript(ctx, c, attemptScript, keys, limit) })
	n, err := cmd.Int64()
	if err != nil {
		return 0, redisError("Attempt script", err)
	}
	if ack != nil {
		// An attempt a failover could forget must not be compared.
		return 0, ack
	}
	if n == 0 {
		return 0, ErrNotFound
	}
	return n, nil
}
