package flow

import (
	"strings"
)

// Allowlist decides who may log in: exact addresses, every address of a
// domain, or every address of any subdomain of one. A domain does not
// include its subdomains ("example.com" does not allow "x@mail.example.com")
// and a wildcard does not include the domain itself ("*.example.com" allows
// "x@mail.example.com" but not "x@example.com"), so that each says exactly
// what it admits.
type Allowlist struct {
	emails  map[string]struct{}
	domains map[string]struct{}
	// suffixes are the wildcards without their "*": ".example.com".
	suffixes []string
}

// NewAllowlist builds an allowlist from normalized addresses and domains; a
// domain "*.example.com" allows every subdomain of example.com.
func NewAllowlist(emails, domains []string) Allowlist {
	a := Allowlist{emails: map[string]struct{}{}, domains: map[string]struct{}{}}
	for _, e := range emails {
		a.emails[strings.ToLower(e)] = struct{}{}
	}
	for _, d := range domains {
		d = strings.ToLower(strings.TrimPrefix(d, "@"))
		if suffix, ok := strings.CutPrefix(d, "*"); ok {
			a.suffixes = append(a.suffixes, suffix)
			continue
		}
		a.domains[d] = struct{}{}
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
	domain := email[at+1:]
	if _, ok := a.domains[domain]; ok {
		return true
	}
	for _, s := range a.suffixes {
		if len(domain) > len(s) && strings.HasSuffix(domain, s) {
			return true
		}
	}
	return false
}
