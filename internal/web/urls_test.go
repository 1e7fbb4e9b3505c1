package web

import "testing"

// Mailed links name the page that serves them, the secret, and the mail's
// locale, mailgate's default when the mail had none; a project id is
// escaped.
func TestMailedURLs(t *testing.T) {
	u := URLs{Origin: "https://app.example.com", Prefix: "/.mailgate"}
	for _, c := range []struct{ got, want string }{
		{u.LinkURL("s3cret", ""), "https://app.example.com/.mailgate/link?t=s3cret&l=en-GB"},
		{u.LinkURL("s3cret", "nl-BE"), "https://app.example.com/.mailgate/link?t=s3cret&l=nl-BE"},
		{u.CodeLinkURL("s3cret", "nl-NL", "a b&c"), "https://app.example.com/.mailgate/login/email/link?t=s3cret&p=a+b%26c&l=nl-NL"},
	} {
		if c.got != c.want {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
}
