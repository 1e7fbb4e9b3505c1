// Package limit counts requests against rate limits in the ticket store, so
// that with a shared store (Redis) every limit holds for the whole cluster.
package limit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// Counter is the store's windowed counting.
type Counter interface {
	Incr(ctx context.Context, key string, window time.Duration) (ticket.Count, error)
}

// Rule allows at most Max hits per Window, counted in fixed windows that
// start at a subject's first hit. The zero Rule limits nothing: callers that
// build rules from config fill in defaults first.
type Rule struct {
	Max    int64
	Window time.Duration
}

// ExceededError is a hit over a rule's Max. RetryAfter is when the window
// ends and hits are allowed again.
type ExceededError struct {
	// Rule names the rule, such as "mails_per_address", for logs.
	Rule       string
	RetryAfter time.Duration
}

func (e *ExceededError) Error() string {
	return fmt.Sprintf("limit: %s exceeded; allowed again in %s", e.Rule, e.RetryAfter.Round(time.Second))
}

// Hit counts one hit of subject against the rule called name. It returns
// an *ExceededError when the hit is over the limit, and the store's error
// when it cannot count: the caller must then refuse, since an uncounted hit
// is an unlimited one. Subjects are hashed, so the store holds no address
// or IP in its keys.
func (r Rule) Hit(ctx context.Context, c Counter, name, subject string) error {
	if r.Max <= 0 {
		return nil
	}
	n, err := c.Incr(ctx, key(name, subject), r.Window)
	if err != nil {
		return fmt.Errorf("limit: counting %s: %w", name, err)
	}
	if n.N > r.Max {
		return &ExceededError{Rule: name, RetryAfter: n.ResetIn}
	}
	return nil
}

// key is where the store counts subject for the rule called name. Subjects
// are hashed: the store holds no address or IP in its keys.
func key(name, subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return "limit:" + name + ":" + hex.EncodeToString(sum[:16])
}

// HitIP counts one hit of the client ip against the rule called name: an
// IPv4 address as itself, an IPv6 address per /64, since one host gets a
// whole /64 and could otherwise pick a fresh address for every request,
// and also per /48 with WideShare times the room, since one site gets a
// whole /48 and could otherwise pick a fresh /64 for every request.
func (r Rule) HitIP(ctx context.Context, c Counter, name, ip string) error {
	narrow, wide := ipSubjects(ip)
	if err := r.Hit(ctx, c, name, narrow); err != nil || wide == "" {
		return err
	}
	return r.wide().Hit(ctx, c, name+wideSuffix, wide)
}

// WideShare is how many /64s' worth of hits a /48 may make: enough for a
// household or an office that spreads over a few /64s, and a bound on a
// visitor who rotates through the 65,536 /64s of a /48.
const WideShare = 16

// wideSuffix names the /48 counts of a rule.
const wideSuffix = "_48"

// wide is the rule for an IPv6 /48.
func (r Rule) wide() Rule { return Rule{Max: r.Max * WideShare, Window: r.Window} }

// ipSubjects is what ip is counted as: the address for IPv4, with no wide
// subject; the /64 and the /48 for IPv6. Anything else counts as itself.
func ipSubjects(ip string) (narrow, wide string) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip, ""
	}
	if a = a.Unmap(); a.Is6() {
		p64, _ := a.Prefix(64)
		p48, _ := a.Prefix(48)
		return p64.String(), p48.String()
	}
	return a.String(), ""
}

// ClientIP is resolve(r), or the peer's address when resolve is nil: the
// server in front decides which proxies to believe, and without one only
// the peer counts.
func ClientIP(r *http.Request, resolve func(*http.Request) string) string {
	if resolve != nil {
		return resolve(r)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
