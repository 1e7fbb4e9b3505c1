// Package clientapi serves the JSON contracts that apps call from the
// browser: seed 003's login by mailed code and the user JWT check. Each call
// is per app, speaks CORS for that app's origins only, and answers in its
// contract's own error shape.
package clientapi

import "net/http"

// Routes mounts seed 003 under prefix. A path that is none of these has no
// pattern here (ServeMux.Handler reports none), so the caller can hand it
// to the next contract.
func Routes(prefix string, codes *EmailCode) *http.ServeMux {
	mux := http.NewServeMux()
	route := func(method, path string, serve func(http.ResponseWriter, *http.Request, *Project) *Error) {
		h := endpoint[*Project]{method: method, app: codes.Projects.find, serve: serve, write: writeError}
		mux.Handle(method+" "+prefix+path, h)
		// Preflights and other methods reach the same endpoint, which
		// answers CORS and the contract's 405 after finding the project.
		mux.Handle(prefix+path, h)
	}
	route(http.MethodPost, "/login/email/request", codes.start)
	route(http.MethodPost, "/login/email/confirm", codes.confirm)
	route(http.MethodGet, "/login/email/request/code", codes.code)
	route(http.MethodGet, "/users/me", codes.me)
	return mux
}
