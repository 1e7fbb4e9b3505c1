package api

import "net/http"

// Endpoints are the server-to-server API's handlers, as Routes mounts them.
type Endpoints struct {
	Discovery  *Discovery
	Token      *TokenEndpoint
	LoginEmail *LoginEmail
	MagicLink  *MagicLink
	Users      *UsersEndpoint
	EmailLink  *EmailLink
}

// Routes mounts the server-to-server API under prefix. Each endpoint is
// routed by its method; another method on its path gets the 405 of the
// endpoint's own contract, with Allow. A path that is none of these has no
// pattern here (ServeMux.Handler reports none), so the caller can hand it
// to the next contract.
func Routes(prefix string, e Endpoints) *http.ServeMux {
	mux := http.NewServeMux()
	// RFC 6749 and OpenID Discovery have no error of their own for a
	// method: invalid_request is the token endpoint's, and the documents
	// share it.
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		mux.Handle("GET "+prefix+path, e.Discovery)
		mux.Handle(prefix+path, notAllowed("GET, HEAD", ErrInvalidRequestMethod.WithHint("use GET")))
	}
	mux.Handle("POST "+prefix+"/oauth/token", e.Token)
	mux.Handle(prefix+"/oauth/token", notAllowed("POST", ErrInvalidRequestMethod.WithHint("use POST")))
	// The seeds' calls echo the caller's correlation ids on every answer,
	// a 405 too.
	mux.Handle("POST "+prefix+"/api/v1/login-email", EchoCorrelation(e.LoginEmail))
	mux.Handle(prefix+"/api/v1/login-email", EchoCorrelation(notAllowed("POST", ErrInvalidInputMethod.WithHint("use POST"))))
	mux.Handle("POST "+prefix+"/api/v1/magic-link", EchoCorrelation(e.MagicLink))
	mux.Handle(prefix+"/api/v1/magic-link", EchoCorrelation(http.HandlerFunc(magicLinkNotAllowed)))
	if u := e.Users; u != nil {
		users, user := prefix+"/api/v1/users", prefix+"/api/v1/users/{userId}"
		mux.Handle("POST "+users, EchoCorrelation(http.HandlerFunc(u.Create)))
		mux.Handle("GET "+users, EchoCorrelation(http.HandlerFunc(u.Find)))
		mux.Handle(users, EchoCorrelation(notAllowed("GET, HEAD, POST", ErrInvalidRequestMethod.WithHint("use POST to create, GET with ?email= to find"))))
		mux.Handle("GET "+user, EchoCorrelation(http.HandlerFunc(u.Get)))
		mux.Handle("PATCH "+user, EchoCorrelation(http.HandlerFunc(u.Patch)))
		mux.Handle("DELETE "+user, EchoCorrelation(http.HandlerFunc(u.Delete)))
		mux.Handle(user, EchoCorrelation(notAllowed("GET, HEAD, PATCH, DELETE", ErrInvalidRequestMethod.WithHint("use GET, PATCH or DELETE"))))
	}
	// Seed 001. GET matches HEAD too.
	links := prefix + "/api/v1/users/{userId}/email-link"
	mux.HandleFunc("POST "+links, e.EmailLink.Create)
	mux.HandleFunc("GET "+links, e.EmailLink.Status)
	mux.HandleFunc("DELETE "+links, e.EmailLink.Withdraw)
	mux.Handle(links, emailLinkNotAllowed("GET, HEAD, POST, DELETE"))
	mux.HandleFunc("POST "+prefix+"/api/v1/email-link/verify", e.EmailLink.Verify)
	mux.Handle(prefix+"/api/v1/email-link/verify", emailLinkNotAllowed("POST"))
	return mux
}

// notAllowed answers a method its path does not serve, in the RFC 6749
// shape.
func notAllowed(allow string, e *Error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		WriteError(w, e)
	})
}

// magicLinkNotAllowed answers a method other than POST in seed 002's shape.
func magicLinkNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "POST")
	writeMagicLink(w, http.StatusMethodNotAllowed, "Use POST")
}
