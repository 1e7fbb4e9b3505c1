package caddymodule

import (
	"context"

	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/mail"
)

// outboxMailer logs each link written to the development outbox, so a local
// run can log in straight from the terminal.
type outboxMailer struct {
	*mail.Mailer
	dir    string
	logger *zap.Logger
}

func (o outboxMailer) Send(ctx context.Context, l mail.Letter) error {
	if err := o.Mailer.Send(ctx, l); err != nil {
		return err
	}
	o.logger.Info("login link written to the dev outbox (not mailed)",
		zap.String("to", l.To), zap.String("link", l.Link), zap.String("outbox", o.dir))
	return nil
}
