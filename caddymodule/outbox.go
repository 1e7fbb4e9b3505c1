package caddymodule

import (
	"context"

	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/mail"
)

// outboxMailer logs each link or code written to the development outbox,
// so a local run can log in straight from the terminal. Only the dev outbox
// does: a real mail's secret never reaches a log.
type outboxMailer struct {
	*mail.Mailer
	dir    string
	logger *zap.Logger
}

func (o outboxMailer) Send(ctx context.Context, l mail.Letter) error {
	if err := o.Mailer.Send(ctx, l); err != nil {
		return err
	}
	fields := []zap.Field{zap.String("to", l.To), zap.String("outbox", o.dir)}
	if l.Code != "" {
		fields = append(fields, zap.String("code", l.Code))
	}
	if l.Link != "" {
		fields = append(fields, zap.String("link", l.Link))
	}
	what := "login link"
	if l.Code != "" {
		what = "login code"
	}
	o.logger.Info(what+" written to the dev outbox (not mailed)", fields...)
	return nil
}
