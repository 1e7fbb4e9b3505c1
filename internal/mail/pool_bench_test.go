package mail

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mailgate/caddy-mailgate/internal/testsmtp"
)

// BenchmarkSMTP measures mails per second to the loopback test server,
// with STARTTLS and AUTH, from 1 and from 8 senders at once: "pooled"
// through at most as many reused connections, "per-mail" with a new
// connection for each mail, as Deliver did before it reused them. The
// server runs in the same process, on the same cores, and its work is
// counted in the allocations.
func BenchmarkSMTP(b *testing.B) {
	srv := secure(b, testsmtp.Options{})
	from, err := ParseFrom("Example <login@example.com>")
	if err != nil {
		b.Fatal(err)
	}
	l := letter()
	msg, err := (&Mailer{From: from, Now: fixedNow}).Compose(l)
	if err != nil {
		b.Fatal(err)
	}
	for _, conns := range []int{1, 8} {
		b.Run(fmt.Sprintf("pooled/conns=%d", conns), func(b *testing.B) {
			s := pooled(srv, TLSStartTLS, conns)
			defer s.Close()
			measure(b, conns, func(ctx context.Context) error {
				return s.Deliver(ctx, from.Address, l.To, msg)
			})
		})
		b.Run(fmt.Sprintf("per-mail/conns=%d", conns), func(b *testing.B) {
			s := pooled(srv, TLSStartTLS, conns)
			measure(b, conns, func(ctx context.Context) error {
				return deliverAlone(ctx, s, from.Address, l.To, msg)
			})
		})
	}
}

// measure runs b.N deliveries from senders goroutines and reports mails/s.
func measure(b *testing.B, senders int, deliver func(context.Context) error) {
	b.ReportAllocs()
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range senders {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := deliver(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mails/s")
}

// deliverAlone delivers as Deliver did before connections were reused: a
// connection of its own, with its TLS handshake and AUTH, and a QUIT.
func deliverAlone(ctx context.Context, s *SMTP, from, to string, msg []byte) error {
	c, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.client.SendMail(from, []string{to}, bytes.NewReader(msg)); err != nil {
		return err
	}
	return c.client.Quit()
}
