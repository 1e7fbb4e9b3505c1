package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailgate/caddy-mailgate/internal/testsmtp"
)

// waitLimit bounds the waits for something the server does in its own
// goroutine; reaching it fails the test.
const waitLimit = 10 * time.Second

// pooled is an SMTP transport for srv, with STARTTLS and AUTH as srv
// wants them.
func pooled(srv *testsmtp.Server, tlsMode string, maxConns int) *SMTP {
	s := &SMTP{Addr: srv.Addr, TLS: tlsMode, MaxConns: maxConns, DialTimeout: 5 * time.Second, Timeout: 10 * time.Second,
		TLSConfig: &tls.Config{RootCAs: srv.RootCAs}}
	if tlsMode != TLSNone {
		s.Username, s.Password = "login@example.com", "s3cret"
	}
	return s
}

// secure starts a server that wants STARTTLS and AUTH.
func secure(t testing.TB, opts testsmtp.Options) *testsmtp.Server {
	opts.TLS, opts.Username, opts.Password = "starttls", "login@example.com", "s3cret"
	return testsmtp.Start(t, opts)
}

func send(t *testing.T, ctx context.Context, s *SMTP) error {
	t.Helper()
	return mailer(t, s).Send(ctx, letter())
}

func mustSend(t *testing.T, s *SMTP) {
	t.Helper()
	if err := send(t, context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// waitClosed waits until the server has seen one more connection close.
func waitClosed(t *testing.T, srv *testsmtp.Server) {
	t.Helper()
	select {
	case <-srv.Closed():
	case <-time.After(waitLimit):
		t.Fatal("no connection closed")
	}
}

// held sends n mails at once through s, to srv, whose Hold is hold, and
// returns once n sessions are stalled at MAIL; release lets them all on
// and returns the errors of all n sends.
func held(t *testing.T, srv *testsmtp.Server, hold chan struct{}, s *SMTP, n int) (release func() []error) {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = mailer(t, s).Send(context.Background(), letter()) })
	}
	for range min(n, orDefault(s.MaxConns, DefaultMaxConns)) {
		select {
		case <-srv.Held():
		case <-time.After(waitLimit):
			t.Fatal("the server never saw the deliveries")
		}
	}
	return func() []error {
		close(hold)
		wg.Wait()
		return errs
	}
}

// TestPoolStartsTLSOnce: many mails, one after the other, go over one
// connection, with one STARTTLS and one AUTH, each authenticated.
func TestPoolStartsTLSOnce(t *testing.T) {
	srv := secure(t, testsmtp.Options{})
	s := pooled(srv, TLSStartTLS, 0)
	defer s.Close()
	for range 20 {
		mustSend(t, s)
	}
	msgs := srv.Messages()
	if len(msgs) != 20 {
		t.Fatalf("%d mails arrived, want 20", len(msgs))
	}
	for _, m := range msgs {
		if m.Auth != "login@example.com" {
			t.Fatalf("a mail arrived unauthenticated: %+v", m)
		}
	}
	if c, h := srv.Connections(), srv.Handshakes(); c != 1 || h != 1 {
		t.Fatalf("%d connections and %d TLS handshakes for 20 mails, want 1 and 1", c, h)
	}
}

// TestPoolReplacesAConnectionTheServerDropped: a server that hung up on
// an idle connection (at its idle limit, or restarting) costs the next
// mail nothing but a new connection, and no error; so does one that also
// refuses to be greeted twice on a connection.
func TestPoolReplacesAConnectionTheServerDropped(t *testing.T) {
	for name, opts := range map[string]testsmtp.Options{
		"starttls":     {TLS: TLSStartTLS, Username: "login@example.com", Password: "s3cret"},
		"greeted once": {TLS: TLSNone, OneHello: true},
	} {
		t.Run(name, func(t *testing.T) {
			srv := testsmtp.Start(t, opts)
			s := pooled(srv, opts.TLS, 0)
			defer s.Close()
			mustSend(t, s)
			srv.HangUp()
			waitClosed(t, srv)
			mustSend(t, s)
			mustSend(t, s)
			if n := len(srv.Messages()); n != 3 {
				t.Fatalf("%d mails arrived, want 3", n)
			}
			if n := srv.Connections(); n != 2 {
				t.Fatalf("%d connections, want 2: the first, and its replacement reused", n)
			}
		})
	}
}

// TestPoolGreetsAConnectionOnce: a server that refuses to be greeted twice
// on one connection takes every mail sent over it, and none comes back
// refused: a reused connection is not greeted again.
func TestPoolGreetsAConnectionOnce(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.Options{TLS: "none", OneHello: true})
	s := pooled(srv, TLSNone, 0)
	defer s.Close()
	for i := range 3 {
		if err := send(t, context.Background(), s); err != nil {
			t.Fatalf("mail %d: %v (for good: %t)", i+1, err, permanent(err))
		}
	}
	if m, c := len(srv.Messages()), srv.Connections(); m != 3 || c != 1 {
		t.Fatalf("%d mails arrived over %d connections, want 3 over 1", m, c)
	}
}

// TestPoolClosesAConnectionAfterAnError: a refusal closes the connection
// it came on, and comes back as before, with the server's code for the
// queue to read: a 451 to try again, a 550 to give up.
func TestPoolClosesAConnectionAfterAnError(t *testing.T) {
	srv := secure(t, testsmtp.Options{FailFirst: 1})
	s := pooled(srv, TLSStartTLS, 0)
	defer s.Close()
	err := send(t, context.Background(), s)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 451 || permanent(err) || !strings.HasPrefix(err.Error(), "mail: sending through "+srv.Addr+": ") {
		t.Fatalf("a 451 came back as %v", err)
	}
	waitClosed(t, srv)
	mustSend(t, s)
	if n := srv.Connections(); n != 2 {
		t.Fatalf("%d connections, want a new one after the error", n)
	}

	refusing := secure(t, testsmtp.Options{RejectRcpt: true})
	s = pooled(refusing, TLSStartTLS, 0)
	defer s.Close()
	if err := send(t, context.Background(), s); !permanent(err) {
		t.Fatalf("a 550 came back as %v, not as permanent", err)
	}
	waitClosed(t, refusing)
}

// TestPoolBoundsConnections: however many deliveries run at once, no more
// than MaxConns connections are open; the others wait for one.
func TestPoolBoundsConnections(t *testing.T) {
	hold := make(chan struct{})
	srv := secure(t, testsmtp.Options{Hold: hold})
	s := pooled(srv, TLSStartTLS, 2)
	defer s.Close()
	// Two are stalled in the server, four wait for a connection.
	for _, err := range held(t, srv, hold, s, 6)() {
		if err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			if err := mailer(t, s).Send(context.Background(), letter()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(srv.Messages()); n != 46 {
		t.Fatalf("%d mails arrived, want 46", n)
	}
	// Nothing failed, so no connection closed: each one made was open
	// at the end.
	if n := srv.Connections(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// TestPoolRetiresIdleConnections: a connection idle for longer than
// IdleTimeout is closed with a QUIT, not reused.
func TestPoolRetiresIdleConnections(t *testing.T) {
	srv := secure(t, testsmtp.Options{})
	now := fixedNow()
	s := pooled(srv, TLSStartTLS, 0)
	s.IdleTimeout = 30 * time.Second
	s.Now = func() time.Time { return now }
	defer s.Close()
	mustSend(t, s)
	now = now.Add(30 * time.Second)
	mustSend(t, s)
	if n := srv.Connections(); n != 1 {
		t.Fatalf("%d connections, want the one reused at the idle limit", n)
	}
	now = now.Add(30*time.Second + time.Nanosecond)
	mustSend(t, s)
	if n := srv.Connections(); n != 2 {
		t.Fatalf("%d connections, want a new one past the idle limit", n)
	}
	waitClosed(t, srv)
}

// TestPoolCloseEndsReuse: Close says goodbye on the idle connections;
// mails sent afterwards still go, each on a connection of its own.
func TestPoolCloseEndsReuse(t *testing.T) {
	srv := secure(t, testsmtp.Options{})
	s := pooled(srv, TLSStartTLS, 0)
	mustSend(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, srv)
	mustSend(t, s)
	waitClosed(t, srv)
	mustSend(t, s)
	if c, m := srv.Connections(), len(srv.Messages()); c != 3 || m != 3 {
		t.Fatalf("%d connections for %d mails after Close, want 3 and 3", c, m)
	}
}

// TestPoolCloseDuringDelivery: Close does not wait for a delivery under
// way, which goes through and then closes its connection.
func TestPoolCloseDuringDelivery(t *testing.T) {
	hold := make(chan struct{})
	srv := secure(t, testsmtp.Options{Hold: hold})
	s := pooled(srv, TLSStartTLS, 0)
	release := held(t, srv, hold, s, 1)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Close waited for the delivery under way")
	}
	if err := release()[0]; err != nil {
		t.Fatal(err)
	}
	waitClosed(t, srv)
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d mails arrived, want 1", n)
	}
}

// TestPoolForgetsTheContextOfADelivery: the context of a delivery that is
// over may end without closing the connection, which waits in the pool
// for the next.
func TestPoolForgetsTheContextOfADelivery(t *testing.T) {
	srv := secure(t, testsmtp.Options{})
	s := pooled(srv, TLSStartTLS, 0)
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	if err := send(t, ctx, s); err != nil {
		t.Fatal(err)
	}
	cancel()
	mustSend(t, s)
	if n := srv.Connections(); n != 1 {
		t.Fatalf("%d connections, want the first one reused", n)
	}
}

// TestCancelCutsOffAStalledReusedExchange: on a reused connection too, a
// delivery's context ending closes the connection, however long its
// timeout.
func TestCancelCutsOffAStalledReusedExchange(t *testing.T) {
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	srv := secure(t, testsmtp.Options{Hold: hold})
	s := pooled(srv, TLSStartTLS, 0)
	s.Timeout = time.Hour
	defer s.Close()
	first := make(chan error, 1)
	go func() { first <- send(t, context.Background(), s) }()
	<-srv.Held()
	hold <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() { second <- send(t, ctx, s) }()
	select {
	case <-srv.Held():
	case <-time.After(waitLimit):
		t.Fatal("the server never saw the second delivery")
	}
	if n := srv.Connections(); n != 1 {
		t.Fatalf("%d connections, want the first one reused", n)
	}
	cancel()
	select {
	case err := <-second:
		if err == nil {
			t.Fatal("a cut-off send succeeded")
		}
	case <-time.After(waitLimit):
		t.Fatal("the send went on after its context ended")
	}
}
