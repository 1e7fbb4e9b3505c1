package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// client is one browser: one keep-alive connection, and the cookies a
// login needs, kept by hand (the site is plain http on localhost, where
// cookiejar would do the same with more work).
type client struct {
	base   string
	origin string
	http   *http.Client
	// form is the form token from the mailgate-form cookie; session the
	// session cookie after a confirm.
	form, session string
}

// newClient makes a client for the site on port. The site is declared as
// localhost, which Caddy matches against Host, and bound to 127.0.0.1:
// the client dials that address whatever localhost resolves to.
func newClient(port int) *client {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	base := fmt.Sprintf("http://localhost:%d", port)
	return &client{
		base:   base,
		origin: base,
		http: &http.Client{
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return dialer.DialContext(ctx, "tcp", addr)
				},
				MaxIdleConnsPerHost: 1,
				DisableCompression:  true,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       30 * time.Second,
		},
	}
}

// page is an answer with its body read.
type page struct {
	status int
	header http.Header
	body   string
}

// do sends req with the client's cookies and keeps the cookies it sets.
func (c *client) do(req *http.Request) (page, error) {
	if c.form != "" {
		req.AddCookie(&http.Cookie{Name: "mailgate-form", Value: c.form})
	}
	if c.session != "" {
		req.AddCookie(&http.Cookie{Name: "mailgate", Value: c.session})
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return page{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return page{}, err
	}
	for _, ck := range resp.Cookies() {
		switch ck.Name {
		case "mailgate-form":
			c.form = ck.Value
		case "mailgate":
			c.session = ck.Value
		}
	}
	return page{resp.StatusCode, resp.Header, string(body)}, nil
}

func (c *client) get(path string) (page, error) {
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		return page{}, err
	}
	req.Header.Set("Accept", "text/html")
	return c.do(req)
}

// post submits a form of mailgate's pages as a browser does: from the
// site's origin, with the form token.
func (c *client) post(path string, form url.Values) (page, error) {
	form.Set("form_token", c.form)
	req, err := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return page{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.origin)
	req.Header.Set("Accept", "text/html")
	return c.do(req)
}

// errStatus is a step that answered other than a browser expects.
type errStatus struct {
	step   string
	status int
}

func (e errStatus) Error() string { return fmt.Sprintf("%s: status %d", e.step, e.status) }

// requestLink opens the login form and posts addr. It answers the post's
// status: 303 when a mail is on its way, 503 when the queue refused it.
func (c *client) requestLink(addr string) (int, error) {
	if p, err := c.get("/.mailgate/login"); err != nil {
		return 0, err
	} else if p.status != http.StatusOK {
		return 0, errStatus{"login page", p.status}
	}
	p, err := c.post("/.mailgate/login/email", url.Values{"email": {addr}, "return": {"/"}})
	return p.status, err
}

// localeField is the confirmation page's hidden locale field.
var localeField = regexp.MustCompile(`name="l" value="([^"]*)"`)

// confirm opens the mailed link and presses Sign in, then fetches the
// protected page with the session it got, which must name addr.
func (c *client) confirm(link, addr string) error {
	u, err := url.Parse(link)
	if err != nil {
		return err
	}
	p, err := c.get(u.RequestURI())
	if err != nil {
		return err
	}
	if p.status != http.StatusOK {
		return errStatus{"link page", p.status}
	}
	locale := ""
	if m := localeField.FindStringSubmatch(p.body); m != nil {
		locale = m[1]
	}
	c.session = ""
	p, err = c.post("/.mailgate/link", url.Values{"t": {u.Query().Get("t")}, "l": {locale}})
	if err != nil {
		return err
	}
	if p.status != http.StatusSeeOther || c.session == "" {
		return errStatus{"confirm", p.status}
	}
	p, err = c.get("/")
	if err != nil {
		return err
	}
	if p.status != http.StatusOK || !strings.Contains(p.body, addr) {
		return errStatus{"protected page", p.status}
	}
	return nil
}

// errNoMail is a link request whose mail did not come in time.
var errNoMail = errors.New("no mail within the timeout")
