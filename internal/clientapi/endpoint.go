package clientapi

import (
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/mailgate/caddy-mailgate/internal/flow"
)

// Project is an app allowed to use seed 003, as configured: what its
// logins need (flow.Project), and what the API checks its calls against.
type Project struct {
	flow.Project
	Name string
	// CallbackURLs are where logins may end; login_url and link_url must
	// equal one exactly.
	CallbackURLs []string
	CORSOrigins  []string
}

// Projects holds the projects by their canonical id.
type Projects map[string]*Project

// find finds the project named by the projectId query parameter, with the
// origins whose pages may call for it.
func (ps Projects) find(_ http.ResponseWriter, r *http.Request) (*Project, []string, *Error) {
	id, ok := canonicalUUID(r.URL.Query().Get("projectId"))
	if !ok {
		return nil, nil, ErrInvalidProjectID.WithHint("projectId must be a project's UUID")
	}
	p, found := ps[id]
	if !found {
		return nil, nil, ErrProjectNotFound.WithHint("no project has this projectId")
	}
	return p, p.CORSOrigins, nil
}

// canonicalUUID reads a UUID in its 36-character form and writes it the one
// way projects are configured.
func canonicalUUID(s string) (string, bool) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return "", false
	}
	return id.String(), true
}

// callback checks a URL the app sent against the project's callback URLs:
// equal to one exactly. field names the parameter for the error, which is
// e's; an empty value means the only callback URL when mayOmit and there is
// only one.
func (p *Project) callback(field, v string, mayOmit bool, e *Error) (string, *Error) {
	if v == "" && mayOmit {
		if len(p.CallbackURLs) == 1 {
			return p.CallbackURLs[0], nil
		}
		return "", e.WithHint(field + " is required: this project has several callback URLs")
	}
	if !slices.Contains(p.CallbackURLs, v) {
		return "", e.WithHint(field + " is not one of this project's callback URLs")
	}
	return v, nil
}

// endpoint is one call of a browser-called contract, with what every such
// call shares: the app it is for (A, a project for seed 003), CORS for that
// app's origins, the preflight, the method, and the contract's error shape.
// Seed 004 reuses it with its own app and error writer.
type endpoint[A any] struct {
	method string
	// app finds the app a request is for, and the origins whose pages may
	// call for it; it may read the body (seed 004 names its client there).
	// Its error is answered before anything else.
	app func(http.ResponseWriter, *http.Request) (A, []string, *Error)
	// serve does the call's work.
	serve func(http.ResponseWriter, *http.Request, A) *Error
	// write answers an error in the contract's shape.
	write func(http.ResponseWriter, *Error)
	// credentials lets the app's page send and receive cookies: a call
	// that starts a session sets one.
	credentials bool
}

func (e endpoint[A]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Origin")
	app, origins, err := e.app(w, r)
	if err != nil {
		e.write(w, err)
		return
	}
	origin := r.Header.Get("Origin")
	allowed := origin != "" && slices.Contains(origins, origin)
	if allowed {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		// A page can read only the headers it is shown: the wait of a
		// 429 and the reason of a 401.
		w.Header().Set("Access-Control-Expose-Headers", "Retry-After, WWW-Authenticate")
		if e.credentials {
			w.Header().Set("Access-Control-Allow-Credentials", "true")
		}
	}
	if r.Method == http.MethodOptions {
		// A preflight: answered for the app's origins only.
		if !allowed {
			e.write(w, ErrOriginNotAllowed.WithHint("this origin may not call the API for this project"))
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", e.method)
		h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// A GET route matches HEAD too, which no call of these serves.
	if r.Method != e.method {
		w.Header().Set("Allow", e.method+", OPTIONS")
		e.write(w, ErrMethodNotAllowed.WithHint("use "+e.method))
		return
	}
	if err := e.serve(w, r, app); err != nil {
		e.write(w, err)
	}
}
