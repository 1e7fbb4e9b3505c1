package flow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// redeem takes the ticket behind secret and hands what it carries to use,
// which does what the confirmation is for (create the user, start the
// session, record the confirmation). The ticket is used up only together
// with that: when use fails with anything but ErrLinkInvalid (a full or
// read-only storage, a store that is down), the ticket is put back for the
// rest of its life, so that the person can press the same button again
// once they recover. held names the ticket's owner, as it was issued, and
// when it expires.
func redeem[T any](ctx context.Context, k ticket.Kind[T], secret string, now func() time.Time,
	held func(T) (owner string, expires time.Time), use func(T) error) error {
	v, err := k.Redeem(ctx, secret)
	if errors.Is(err, ticket.ErrNotFound) {
		return ErrLinkInvalid
	}
	if err != nil {
		return fmt.Errorf("flow: reading the %s ticket: %w", k.Name, err)
	}
	err = use(v)
	if err == nil || errors.Is(err, ErrLinkInvalid) {
		return err
	}
	owner, expires := held(v)
	if ttl := expires.Sub(now()); ttl > 0 {
		// Not cancelled with the request: a person who gave up waiting
		// must still find the link working.
		if perr := k.PutBack(context.WithoutCancel(ctx), owner, secret, v, ttl); perr != nil {
			return errors.Join(err, fmt.Errorf("flow: putting back the %s ticket: %w", k.Name, perr))
		}
	}
	return err
}
