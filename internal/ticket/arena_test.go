package ticket

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestTicketTableAgainstAMap runs random sets, lookups and removals on a
// small ticket table, so that the ring wraps and evicts many times over,
// against a map of what was last set: a lookup never returns anything but
// the value last set under its key, the most recent entries are always
// there, and every slot stays reachable from its home.
func TestTicketTableAgainstAMap(t *testing.T) {
	tt, err := newTicketTable(64 << 10)
	if err != nil {
		t.Fatal(err)
	}
	defer tt.free()
	r := rand.New(rand.NewPCG(1, 2))
	model := map[[compactKeyBytes]byte]string{}
	var order [][compactKeyBytes]byte // keys set, most recent last
	keyOf := func(i int) [compactKeyBytes]byte {
		return newCompactKeys().of(fmt.Sprint(i)) // a fresh salt: uniform keys
	}
	keys := make([][compactKeyBytes]byte, 4000)
	for i := range keys {
		keys[i] = keyOf(i)
	}
	exp := tick(time.Now().Add(time.Hour))
	for step := range 200_000 {
		k := keys[r.IntN(len(keys))]
		switch op := r.IntN(10); {
		case op < 5:
			v := fmt.Sprintf("v%d-%s", step, make([]byte, r.IntN(120)))
			if err := tt.set(&k, exp, []byte(v)); err != nil {
				t.Fatal(err)
			}
			model[k] = v
			order = append(order, k)
		case op < 7:
			if _, slot, ok := tt.lookup(&k); ok {
				tt.remove(slot)
			}
			delete(model, k)
		default:
			e, _, ok := tt.lookup(&k)
			if ok && string(e[headerBytes:]) != model[k] {
				t.Fatalf("step %d: lookup = %q, want %q", step, e[headerBytes:], model[k])
			}
		}
		if step%1000 == 0 {
			checkSlots(t, tt)
		}
	}
	// The last few sets (if not removed since) are all there: a ring of
	// ~60 KiB holds far more than 50 entries of at most 160 bytes.
	for _, k := range order[len(order)-50:] {
		want, kept := model[k]
		e, _, ok := tt.lookup(&k)
		if kept != ok || (ok && string(e[headerBytes:]) != want) {
			t.Fatalf("a recent entry: %v %q, want %v %q", ok, e, kept, want)
		}
	}
}

// checkSlots checks that every used slot is found from its home and that
// entries counts them.
func checkSlots(t *testing.T, tt *ticketTable) {
	t.Helper()
	used := 0
	for i, s := range tt.slots {
		if s == 0 {
			continue
		}
		used++
		if j, ok := tt.find(prefixOf(tt.keyAt(int(s - 1)))); !ok || j != i {
			t.Fatalf("slot %d is not reachable from its home (found %d, %v)", i, j, ok)
		}
	}
	if used != tt.entries || used > tt.maxEntries {
		t.Fatalf("%d slots used, entries %d, max %d", used, tt.entries, tt.maxEntries)
	}
}
