package ticket

import "strings"

// How the memory store packs the values it is given. Nearly every ticket's
// value is a JSON object from Kind, and its field names take a third of
// it: a pending link's {"email":"…","return":"…","expires":…,"issued":…}
// spends 45 of its ~105 bytes on them. JSON never holds a byte below 0x20
// (encoding/json escapes control characters), so such bytes are free to
// stand for the common names: a value without any is stored with them
// replaced by one byte each; any other value (an owner's pointer, anything
// not JSON) is stored as it is after a zero byte. Unpacking is exact either
// way.

// packWords are the JSON fragments a code stands for, code i+1 for word i,
// longest first where one starts another. They are the fields of the
// values Kind stores (flow's link, code and pending-step payloads); a
// field not listed costs what it did.
var packWords = [...]string{
	`{"email":"`, `","return":"`, `","locale":"`, `","expires":`, `,"expires":`, `,"issued":`,
	`,"client":{`, `"client_id":"`, `"redirect_uri":"`, `"state":"`, `"scope":"`,
	`"code_challenge":"`, `"app_name":"`, `"user_id":"`, `true`, `false`,
}

// rawValue starts a value stored as it is.
const rawValue = 0

var (
	packer   = newPacker()
	unpacker = newUnpacker()
)

func newPacker() *strings.Replacer {
	pairs := make([]string, 0, 2*len(packWords))
	for i, w := range packWords {
		pairs = append(pairs, w, string(rune(i+1)))
	}
	return strings.NewReplacer(pairs...)
}

func newUnpacker() *strings.Replacer {
	pairs := make([]string, 0, 2*len(packWords))
	for i, w := range packWords {
		pairs = append(pairs, string(rune(i+1)), w)
	}
	return strings.NewReplacer(pairs...)
}

// pack returns value as the memory store keeps it.
func pack(value []byte) []byte {
	for _, c := range value {
		if c < 0x20 {
			return append([]byte{rawValue}, value...)
		}
	}
	if len(value) == 0 {
		return []byte{rawValue}
	}
	return []byte(packer.Replace(string(value)))
}

// unpack returns the value pack stored as p.
func unpack(p []byte) []byte {
	if len(p) > 0 && p[0] == rawValue {
		return append([]byte(nil), p[1:]...)
	}
	return []byte(unpacker.Replace(string(p)))
}
