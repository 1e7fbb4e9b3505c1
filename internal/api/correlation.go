package api

import "net/http"

// EchoCorrelation copies the caller's X-Request-ID and X-Correlation-ID onto
// the response, whatever its status, so that the caller can match answers
// and logs. Values that could not be a plain header value are dropped.
func EchoCorrelation(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, name := range []string{"X-Request-ID", "X-Correlation-ID"} {
			if v := r.Header.Get(name); safeHeaderValue(v) {
				w.Header().Set(name, v)
			}
		}
		next.ServeHTTP(w, r)
	})
}

func safeHeaderValue(v string) bool {
	if v == "" || len(v) > 200 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}
