// Package clientapi serves the JSON contracts that apps call from the
// browser: seed 003's login by mailed code and the user JWT check, and seed
// 004's sign-in. Each call is per app, speaks CORS for that app's origins
// only, and answers in its contract's own error shape.
package clientapi

import "net/http"

// Routes mounts seed 003 (codes) and seed 004 (signIn) under prefix; a nil
// one is not mounted. A path that is none of these has no pattern here
// (ServeMux.Handler reports none), so the caller can hand it to the next
// contract.
func Routes(prefix string, codes *EmailCode, signIn *SignIn) *http.ServeMux {
	mux := http.NewServeMux()
	// Each call's method goes to it, and so do preflights and other
	// methods: the endpoint answers CORS and the contract's 405 after
	// finding the app.
	handle := func(method, path string, h http.Handler) {
		mux.Handle(method+" "+prefix+path, h)
		mux.Handle(prefix+path, h)
	}
	if codes != nil {
		code := func(method, path string, serve func(http.ResponseWriter, *http.Request, *Project) *Error) {
			handle(method, path, endpoint[*Project]{method: method, app: codes.Projects.find, serve: serve, write: writeError})
		}
		code(http.MethodPost, "/login/email/request", codes.start)
		code(http.MethodPost, "/login/email/confirm", codes.confirm)
		code(http.MethodGet, "/login/email/request/code", codes.code)
		code(http.MethodGet, "/users/me", codes.me)
	}
	if signIn != nil {
		handle(http.MethodPost, "/api/account/login", endpoint[*signInCall]{
			method: http.MethodPost, app: signIn.call, serve: signIn.login, write: writeSignInError, credentials: true,
		})
	}
	if signIn != nil && signIn.Steps != nil {
		step := func(method, path string, serve func(http.ResponseWriter, *http.Request, struct{}) *Error) {
			handle(method, path, endpoint[struct{}]{method: method, app: signIn.anyClient, serve: serve, write: writeSignInError, credentials: true})
		}
		step(http.MethodGet, "/api/account/login-resume", signIn.resume)
		step(http.MethodPost, "/api/account/login-persist", signIn.persist)
		handle(http.MethodPost, "/api/account/update-expired-password", endpoint[*expiredCall]{
			method: http.MethodPost, app: signIn.expiredCall, serve: signIn.updateExpired, write: writeSignInError, credentials: true,
		})
	}
	return mux
}
