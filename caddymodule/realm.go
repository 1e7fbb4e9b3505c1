package caddymodule

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/session"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// realms holds the state that must outlive a config reload: Caddy provisions
// the new config before it cleans up the old one, so a pending link or a
// logout recorded under the old config is still there under the new one.
var realms = caddy.NewUsagePool()

// realm is the shared state of all sites with one realm name.
type realm struct {
	store ticket.Store
	ring  *session.KeyRing
	// settings is what the store was built from, so that a reload that
	// asks for another store is noticed instead of silently ignored.
	settings StoreConfig
	// rotation is key_rotation of the config that provisioned last, read
	// by the key maintenance that runs as long as the realm does.
	rotation atomic.Int64
	stopKeys context.CancelFunc
	// observer is the observer of the config that provisioned last, told
	// of the key upkeep's rotations.
	observer atomic.Pointer[flow.Observer]
	// keysLogger is where the key upkeep logs.
	keysLogger *zap.Logger
}

// keepKeys is one round of the key upkeep: it rotates the ring when its
// newest key is older than key_rotation (of the config that provisioned
// last) and tells that config's observer, for the audit trail and the
// metrics.
func (r *realm) keepKeys(ctx context.Context) {
	if kid := rotateKeysIfDue(ctx, r.ring, time.Duration(r.rotation.Load()), r.keysLogger); kid != "" {
		flow.Observed(*r.observer.Load()).KeyRotated(kid)
	}
}

// Destruct implements caddy.Destructor: the last config using the realm is
// gone.
func (r *realm) Destruct() error {
	r.stopKeys()
	return r.store.Close()
}

// loadRealm returns the realm under key, creating it if no running config
// holds it. A realm that is already running keeps its store: it holds
// pending links and revocations that a reload must not lose, and a memory
// store cannot hand them to a new one. So a reload that asks for other store
// settings is refused with a clear error, and the running config carries on.
func loadRealm(ctx caddy.Context, key string, want StoreConfig, rotation caddy.Duration, observer flow.Observer, logger *zap.Logger) (*realm, error) {
	v, loaded, err := realms.LoadOrNew(key, func() (caddy.Destructor, error) {
		ring, err := session.LoadKeyRing(ctx, ctx.Storage(), key+"/keys.json", now)
		if err != nil {
			return nil, err
		}
		store, err := want.newStore(strings.TrimPrefix(key, "mailgate/"), logger.Named("store"))
		if err != nil {
			return nil, err
		}
		r := &realm{store: store, ring: ring, settings: want}
		r.rotation.Store(int64(rotation))
		// Not ctx: the realm outlives the config that created it.
		keysCtx, stop := context.WithCancel(context.Background())
		r.stopKeys = stop
		r.keysLogger = logger.Named("keys")
		r.observer.Store(&observer)
		go maintainKeys(keysCtx, r.keepKeys)
		return r, nil
	})
	if err != nil {
		return nil, err
	}
	r := v.(*realm)
	if loaded && !r.settings.same(want) {
		_, _ = realms.Delete(key)
		return nil, fmt.Errorf("mailgate: realm %q runs a %s; this config asks for a %s. "+
			"A reload cannot swap the store without losing pending links and revocations: restart Caddy to apply it",
			strings.TrimPrefix(key, "mailgate/"), r.settings, want)
	}
	r.rotation.Store(int64(rotation))
	r.observer.Store(&observer)
	return r, nil
}

// clockOffset moves mailgate's clock. Only tests set it, to expire links and
// sessions without waiting.
var clockOffset atomic.Int64

// now is mailgate's clock: every expiry decision reads it.
func now() time.Time {
	return time.Now().Add(time.Duration(clockOffset.Load()))
}
