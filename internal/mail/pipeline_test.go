package mail

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mailgate/caddy-mailgate/internal/testsmtp"
)

// TestMessagesArriveAsSentWhateverTheServerOffers: a message arrives byte
// for byte as it was handed over, a line that starts with a dot included,
// whether it goes in one round trip (PIPELINING and CHUNKING), in two
// (PIPELINING and DATA) or command by command (neither); and a refusal
// comes back with its code in each.
func TestMessagesArriveAsSentWhateverTheServerOffers(t *testing.T) {
	msg := []byte("Subject: hello\r\n\r\n.a line that starts with a dot\r\n..and two\r\nend\r\n")
	for name, without := range map[string][]string{
		"pipelining and chunking": {},
		"pipelining":              {"CHUNKING"},
		"neither":                 {"PIPELINING", "CHUNKING"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := testsmtp.Start(t, testsmtp.Options{TLS: TLSNone, Without: without})
			s := pooled(srv, TLSNone, 1)
			defer s.Close()
			for range 3 {
				if err := s.Deliver(context.Background(), "login@example.com", "alice@example.com", msg); err != nil {
					t.Fatal(err)
				}
			}
			msgs := srv.Messages()
			if len(msgs) != 3 {
				t.Fatalf("%d messages arrived, want 3", len(msgs))
			}
			for _, m := range msgs {
				if !bytes.Equal(m.Data, msg) || m.From != "login@example.com" || len(m.To) != 1 || m.To[0] != "alice@example.com" {
					t.Fatalf("arrived %+v (%q), want the message as sent", m, m.Data)
				}
			}
			if n := srv.Connections(); n != 1 {
				t.Fatalf("%d connections for 3 messages, want 1", n)
			}

			refusing := testsmtp.Start(t, testsmtp.Options{TLS: TLSNone, Without: without, RejectRcpt: true})
			s = pooled(refusing, TLSNone, 1)
			defer s.Close()
			err := s.Deliver(context.Background(), "login@example.com", "alice@example.com", msg)
			var se *smtp.SMTPError
			if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) || !permanent(err) {
				t.Fatalf("a 550 came back as %#v", err)
			}
		})
	}
}

// TestMessagesWaitingGoTogether: messages that wait for a connection go
// in one exchange, over one connection; one that the server refuses there
// comes back refused, and the others arrive.
func TestMessagesWaitingGoTogether(t *testing.T) {
	srv := secure(t, testsmtp.Options{RejectTo: "carol@example.com"})
	s := pooled(srv, TLSStartTLS, 1)
	defer s.Close()
	// As if they had come while the one connection was in an exchange.
	var waiting []*message
	for _, to := range []string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"} {
		m := &message{ctx: context.Background(), from: "login@example.com", to: to, msg: []byte("Subject: hi\r\n\r\nhi\r\n"), done: make(chan error, 1)}
		s.pool.wait(m)
		waiting = append(waiting, m)
	}
	// The next Deliver takes them all, the longest waiting first.
	if err := s.Deliver(context.Background(), "login@example.com", "erin@example.com", []byte("Subject: hi\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	for _, m := range waiting {
		err := <-m.done
		if refused := m.to == "carol@example.com"; refused != (err != nil) || refused && !permanent(err) {
			t.Errorf("%s: %v", m.to, err)
		}
	}
	var to []string
	for _, m := range srv.Messages() {
		to = append(to, m.To...)
	}
	if want := []string{"alice@example.com", "bob@example.com", "dave@example.com", "erin@example.com"}; !slices.Equal(to, want) {
		t.Fatalf("arrived for %q, want %q", to, want)
	}
	if n := srv.Connections(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
	// The refusal closed the connection; the next mail takes a new one.
	waitClosed(t, srv)
	mustSend(t, s)
}
