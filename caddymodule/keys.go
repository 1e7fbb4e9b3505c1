package caddymodule

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/session"
)

const (
	// defaultKeyRotation is how long a signing key signs before the next
	// one takes over.
	defaultKeyRotation = 30 * 24 * time.Hour
	// keyRefresh is how often every instance reads the key ring from
	// storage again, picking up keys another instance or `caddy mailgate
	// rotate-keys` stored, and checks whether a rotation is due.
	keyRefresh = time.Minute
	// keyActivation is how long a new key is published before it signs:
	// longer than keyRefresh plus jwksMaxAge, so that every instance and
	// every app that caches the JWKS knows the key before a token it signed
	// reaches them.
	keyActivation = 5 * time.Minute
	// jwksMaxAge is how long apps may cache the JWKS: well inside
	// keyActivation, and far shorter than an old key's retention.
	jwksMaxAge = 2 * time.Minute
	// maxSessionTTL bounds session_ttl: the longest token the ring signs,
	// and so how long a retired key keeps verifying (keyRetention).
	maxSessionTTL = 30 * 24 * time.Hour
	// keyRetention is how long a key verifies after its successor
	// activates: the longest lifetime of any token it may have signed.
	keyRetention = maxSessionTTL + session.Skew
)

// checkKeyRotation keeps key_rotation long enough for a new key to be
// published and picked up everywhere before the next one comes.
func checkKeyRotation(d caddy.Duration) error {
	if time.Duration(d) < time.Hour {
		return fmt.Errorf("mailgate: key_rotation %s: must be at least 1h", time.Duration(d))
	}
	return nil
}

// maintainKeys runs for as long as the realm does: every keyRefresh it
// runs round, which reads the key ring from storage and rotates it when
// due (see realm.keepKeys). Instances that share the storage rotate once
// between them.
func maintainKeys(ctx context.Context, round func(context.Context)) {
	t := time.NewTicker(keyRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		round(ctx)
	}
}

// rotateKeysIfDue is one round of maintainKeys; it returns the kid of the
// key it rotated to, or "".
func rotateKeysIfDue(ctx context.Context, ring *session.KeyRing, rotation time.Duration, logger *zap.Logger) string {
	if err := ring.Refresh(ctx, 0); err != nil {
		logger.Warn("reading the key ring; signing with the keys in hand", zap.Error(err))
		return ""
	}
	kid, err := ring.RotateIfDue(ctx, rotation, keyActivation, keyRetention)
	if err != nil {
		// Not an outage: every key in hand goes on working, and the
		// rotation is tried again at the next round, as when the storage
		// is read-only until an operator makes it writable.
		logger.Warn("cannot rotate the signing key (is the storage writable?); the current key goes on signing until a later try succeeds",
			zap.Duration("next_try_in", keyRefresh), zap.Error(err))
		return ""
	}
	if kid != "" {
		logger.Info("rotated the signing key", zap.String("kid", kid), zap.Duration("signs_in", keyActivation))
	}
	return kid
}
