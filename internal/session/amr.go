package session

import "slices"

// A session says how the person signed in, in its amr claim (RFC 8176,
// "Authentication Method Reference Values"): first the registered values
// for the kind of proof, then the sign-in method as mailgate names it
// (flow.Method), because the registered values alone cannot tell a mailed
// link from a mailed code or an invitation: all three are one-time
// secrets sent out of band ("otp"). The method's name is last, so an app
// that only knows RFC 8176 reads the registry's values and skips the one it
// does not know, and one that wants the method reads the last.
//
// A method not in the table (OpenID sign-ins through another provider,
// passkeys, when they come) is carried as its name alone until it gets a
// line here; a passkey would be {"hwk" or "swk", "user", "passkey"}.
var methodAMR = map[string][]string{
	"link":           {"otp", "link"},
	"code":           {"otp", "code"},
	"password":       {"pwd", "password"},
	"invitation":     {"otp", "invitation"},
	"password_reset": {"otp", "password_reset"},
}

// maxAMR is the most values a session's amr claim may hold.
const maxAMR = 4

// AMR returns the amr claim of a session signed in by method, or nil when
// the method is not known (""). The slice is shared: read it, never write.
func AMR(method string) []string {
	if method == "" {
		return nil
	}
	if v, ok := methodAMR[method]; ok {
		return v
	}
	return []string{method}
}

// amrSlice turns the claim as verified into a session's AMR: the table's own
// slice for every value mailgate issues, so a first sight allocates nothing
// for it.
func amrSlice(a [maxAMR]string) []string {
	n := 0
	for n < maxAMR && a[n] != "" {
		n++
	}
	if n == 0 {
		return nil
	}
	if v, ok := methodAMR[a[n-1]]; ok && slices.Equal(v, a[:n]) {
		return v
	}
	return slices.Clone(a[:n])
}

// Method returns the sign-in method the session's amr names (its last
// value), or "" when the session does not say (one issued before sessions
// carried amr).
func (s *Session) Method() string {
	if len(s.AMR) == 0 {
		return ""
	}
	return s.AMR[len(s.AMR)-1]
}
