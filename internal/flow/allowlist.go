// Package flow holds mailgate's login flows as plain functions over the
// ticket store, the directory and the mailer; it knows nothing of HTTP.
package flow

import (
	"strings"
)

// Allowlist decides who may log in: exact addresses, or every address of a
// domain. Subdomains are not included: "example.com" does not allow
// "x@mail.example.com".
type Allowlist struct {
	emails  map[string]struct{}
	domains map[string]struct{}
}

// NewAllowlist builds an allowlist from normalized addresses and domains.
func NewAllowlist(emails, domains []string) Allowlist {
	a := Allowlist{emails: map[string]struct{}{}, domains: map[string]struct{}{}}
	for _, e := range emails {
		a.emails[strings.ToLower(e)] = struct{}{}
	}
	for _, d := range domains {
		a.domains[strings.ToLower(strings.TrimPrefix(d, "@"))] = struct{}{}
	}
	return a
}

// Allows reports whether the normalized address may log in.
func (a Allowlist) Allows(email string) bool {
	if _, ok := a.emails[email]; ok {
		return true
	}
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return false
	}
	_, ok := a.domains[email[at+1:]]
	return ok
}
