package password

import (
	_ "embed"
	"sort"
	"strings"
	"sync"
)

// blocklist.txt holds the common passwords of 8 characters or more (a
// shorter one fails the length rule first), lower-case, one a line, in
// byte order: 15,769 entries, 148 KB, from zxcvbn's list of the most
// frequent passwords in public breaches (blocklist-LICENSE.txt).
//
//go:embed blocklist.txt
var blocklistText string

var (
	blocklistOnce  sync.Once
	blocklistLines []string
)

// common reports whether pw, in any case, is on the list. The list is split
// once, at the first check, and searched by bisection: no map of 15,769
// strings on the heap of a site that never asks for a password.
func common(pw string) bool {
	blocklistOnce.Do(func() {
		blocklistLines = strings.Split(strings.TrimSuffix(blocklistText, "\n"), "\n")
	})
	pw = strings.ToLower(pw)
	i := sort.SearchStrings(blocklistLines, pw)
	return i < len(blocklistLines) && blocklistLines[i] == pw
}
