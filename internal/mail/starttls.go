package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"
)

// errNoStartTLS is why a connection that must be upgraded is given up.
var errNoStartTLS = errors.New("the server does not offer STARTTLS")

// startTLS upgrades nc with STARTTLS and returns it secured, for go-smtp to
// carry on as on a new connection. go-smtp's own NewClientStartTLS would
// greet the server as localhost before STARTTLS, whatever the client's
// name, and some servers refuse that greeting (smtp-relay.gmail.com does);
// so the exchange before the handshake is made here, as LocalName.
func (s *SMTP) startTLS(ctx context.Context, nc net.Conn, config *tls.Config) (net.Conn, error) {
	// Not closed: that would close nc, which the caller closes on error.
	tp := textproto.NewConn(nc)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, fmt.Errorf("mail: greeting %s: %w", s.Addr, smtpError(err))
	}
	_, ext, err := command(tp, 250, "EHLO %s", s.localName())
	if err != nil {
		return nil, fmt.Errorf("mail: greeting %s: %w", s.Addr, smtpError(err))
	}
	if !offers(ext, "STARTTLS") {
		return nil, fmt.Errorf("mail: connecting to %s: %w", s.Addr, errNoStartTLS)
	}
	if _, _, err := command(tp, 220, "STARTTLS"); err != nil {
		return nil, fmt.Errorf("mail: STARTTLS with %s: %w", s.Addr, smtpError(err))
	}
	// Whatever the server sent after its answer to STARTTLS stays in tp's
	// buffer, unread: only what comes through TLS is believed.
	tc, err := s.handshake(ctx, nc, config)
	if err != nil {
		return nil, err
	}
	return &resumed{Conn: tc, r: io.MultiReader(strings.NewReader("220 \r\n"), tc)}, nil
}

// command sends one command and reads its answer, which must have code.
func command(tp *textproto.Conn, code int, format string, args ...any) (int, string, error) {
	id, err := tp.Cmd(format, args...)
	if err != nil {
		return 0, "", err
	}
	tp.StartResponse(id)
	defer tp.EndResponse(id)
	return tp.ReadResponse(code)
}

// offers reports whether an answer to EHLO lists ext: its lines after the
// first name one extension each, with its parameters.
func offers(ehlo, ext string) bool {
	lines := strings.Split(ehlo, "\n")
	for _, l := range lines[1:] {
		name, _, _ := strings.Cut(l, " ")
		if strings.EqualFold(name, ext) {
			return true
		}
	}
	return false
}

// smtpError turns a refusal into the *smtp.SMTPError that go-smtp returns
// for the same refusal, which tells the queue whether it lasts (see
// permanent): with the enhanced status code (RFC 2034) that leads the text
// taken out of it, as go-smtp does.
func smtpError(err error) error {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return err
	}
	se := &smtp.SMTPError{Code: te.Code, Message: te.Msg}
	if code, msg, ok := strings.Cut(te.Msg, " "); ok {
		if ec, ok := enhancedCode(code); ok {
			se.EnhancedCode = ec
			// Each line of a reply repeats the code.
			se.Message = strings.ReplaceAll(msg, "\n"+code+" ", "\n")
		}
	}
	return se
}

// enhancedCode parses an enhanced status code such as 4.3.0.
func enhancedCode(s string) (smtp.EnhancedCode, bool) {
	var ec smtp.EnhancedCode
	parts := strings.Split(s, ".")
	if len(parts) != len(ec) {
		return ec, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return ec, false
		}
		ec[i] = n
	}
	return ec, true
}

// resumed is a connection secured with STARTTLS, handed to go-smtp as if it
// were new. After STARTTLS the session starts over as after the server's
// greeting (RFC 3207, 4.2), and go-smtp's client begins by reading that
// greeting: resumed gives it one, then what comes through TLS.
type resumed struct {
	net.Conn
	r io.Reader
}

func (c *resumed) Read(p []byte) (int, error) { return c.r.Read(p) }
