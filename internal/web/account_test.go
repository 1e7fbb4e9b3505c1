package web

import "testing"

// state on the account pages is only ever a way back to this site.
func TestReturnOfStateIsSameOriginOnly(t *testing.T) {
	h := &Handler{Forms: Forms{Origin: "https://app.example.com"}}
	for state, want := range map[string]string{
		"/orders?id=7":                          "/orders?id=7",
		"https://app.example.com/orders?id=7":   "/orders?id=7",
		"https://app.example.com":               "",
		"https://app.example.com.evil.example/": "",
		"https://evil.example/":                 "",
		"//evil.example/":                       "",
		"/\\evil.example":                       "",
		"javascript:alert(1)":                   "",
		"":                                      "",
	} {
		if got := h.returnOf(state); got != want {
			t.Errorf("returnOf(%q) = %q, want %q", state, got, want)
		}
	}
}
