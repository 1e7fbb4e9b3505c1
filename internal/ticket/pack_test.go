package ticket

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestPackIsExact: every value unpacks to itself, JSON or not, and a
// link's JSON shrinks.
func TestPackIsExact(t *testing.T) {
	link, err := json.Marshal(struct {
		Email   string `json:"email"`
		Return  string `json:"return,omitempty"`
		Expires int64  `json:"expires"`
		Issued  int64  `json:"issued"`
	}{"someone@example.com", "/reports?tab=true", 1796504433525419500, 1796503833525419500})
	if err != nil {
		t.Fatal(err)
	}
	values := [][]byte{nil, {}, {0}, {1, 2, 3}, []byte("true false"), link, append([]byte("x\x01"), link...)}
	r := rand.New(rand.NewPCG(7, 8))
	for range 5000 {
		v := make([]byte, r.IntN(40))
		for i := range v {
			v[i] = byte(r.IntN(256))
			if r.IntN(2) == 0 {
				v[i] = `{"emailrtun:,xpisdfl}`[r.IntN(21)]
			}
		}
		values = append(values, v)
	}
	for _, v := range values {
		if got := unpack(pack(v)); !bytes.Equal(got, v) {
			t.Fatalf("unpack(pack(%q)) = %q", v, got)
		}
	}
	if p := pack(link); len(p) > len(link)-30 {
		t.Fatalf("a link's %d bytes packed into %d: %q", len(link), len(p), p)
	}
}
