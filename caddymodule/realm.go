package caddymodule

import (
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mailgate/caddy-mailgate/internal/session"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// realms holds the state that must outlive a config reload: Caddy provisions
// the new config before it cleans up the old one, so a pending link or a
// logout recorded under the old config is still there under the new one.
var realms = caddy.NewUsagePool()

// realm is the shared state of all sites with one realm name.
type realm struct {
	store *ticket.Memory
	ring  *session.KeyRing
}

// Destruct implements caddy.Destructor: the last config using the realm is
// gone.
func (r *realm) Destruct() error { return r.store.Close() }

func loadRealm(ctx caddy.Context, key string, maxMemory int64) (*realm, error) {
	v, _, err := realms.LoadOrNew(key, func() (caddy.Destructor, error) {
		ring, err := session.LoadKeyRing(ctx, ctx.Storage(), key+"/keys.json")
		if err != nil {
			return nil, err
		}
		store, err := ticket.NewMemory(maxMemory, now)
		if err != nil {
			return nil, err
		}
		return &realm{store: store, ring: ring}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*realm), nil
}

// clockOffset moves mailgate's clock. Only tests set it, to expire links and
// sessions without waiting.
var clockOffset atomic.Int64

// now is mailgate's clock: every expiry decision reads it.
func now() time.Time {
	return time.Now().Add(time.Duration(clockOffset.Load()))
}
