package testsmtp

import (
	"bufio"
	"bytes"
	"net"
)

// oneHello is a connection on which the server takes one greeting: an EHLO
// or HELO after the first is answered here with a 503, and the server never
// reads it. A server may refuse a repeated greeting (RFC 5321, 4.1.4), but
// go-smtp's server takes it, and its Backend never sees one, so the refusal
// has to come from below the server. It reads the client's commands as
// they come over the wire, so it works on a connection without TLS only.
//
// A line of a message's body that began with EHLO or HELO would be taken
// for a greeting; the mails of the tests have none.
type oneHello struct {
	net.Conn
	r       *bufio.Reader
	greeted bool
	// rest is what the server has yet to read of the last line passed on.
	rest []byte
}

func (c *oneHello) Read(p []byte) (int, error) {
	for len(c.rest) == 0 {
		line, err := c.r.ReadBytes('\n')
		if len(line) == 0 {
			return 0, err
		}
		if !isHello(line) {
			c.rest = line
			break
		}
		if !c.greeted {
			c.greeted = true
			c.rest = line
			break
		}
		// The server's goroutine is the one reading, and it writes only
		// after it has read a command: this answer cannot cut into one of
		// its own.
		if _, err := c.Conn.Write([]byte("503 5.5.1 Duplicate HELO/EHLO\r\n")); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}

// isHello reports whether line is an EHLO or HELO command.
func isHello(line []byte) bool {
	verb, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(" "))
	return bytes.EqualFold(verb, []byte("EHLO")) || bytes.EqualFold(verb, []byte("HELO"))
}

// without is a connection on which the server's answer to EHLO leaves out
// some extensions. go-smtp's server writes each line of an answer with a
// write of its own, so a line can be dropped whole; only lines that go on
// ("250-"), since the last one would end the answer.
type without struct {
	net.Conn
	exts []string
}

func (c *without) Write(p []byte) (int, error) {
	if ext, ok := bytes.CutPrefix(p, []byte("250-")); ok {
		name, _, _ := bytes.Cut(bytes.TrimRight(ext, "\r\n"), []byte(" "))
		for _, e := range c.exts {
			if bytes.EqualFold(name, []byte(e)) {
				return len(p), nil
			}
		}
	}
	return c.Conn.Write(p)
}
