package redirect

import "testing"

func TestSafeReturn(t *testing.T) {
	for in, want := range map[string]string{
		"/":                    "/",
		"/app/page?x=1#top":    "/app/page?x=1#top",
		"":                     "/",
		"//evil.example/":      "/",
		"/\\evil.example":      "/",
		"https://evil.example": "/",
		"javascript:alert(1)":  "/",
		"relative/path":        "/",
		"/a\r\nSet-Cookie: x":  "/",
		"/%zz":                 "/",
	} {
		if got := SafeReturn(in); got != want {
			t.Errorf("SafeReturn(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOneLoopbackRule: base_url, SMTP and redirect URIs used to disagree on
// 127.0.0.2; every loopback address counts, and nothing else does.
func TestOneLoopbackRule(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.0.0.2": true, "::1": true,
		"localhost.example.com": false, "10.0.0.1": false, "128.0.0.1": false, "example.com": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestCheckURI(t *testing.T) {
	for uri, ok := range map[string]bool{
		"https://shop.example.com/callback": true,
		"http://127.0.0.2:8080/callback":    true,
		"http://localhost/cb":               true,
		"http://shop.example.com/callback":  false,
		"https://shop.example.com/cb#frag":  false,
		"https://user@shop.example.com/cb":  false,
		"/relative":                         false,
	} {
		if err := CheckURI(uri); (err == nil) != ok {
			t.Errorf("CheckURI(%q) = %v, want ok=%v", uri, err, ok)
		}
	}
}
