//go:build mailgatetest

package caddymodule

import (
	"os"
	"time"
)

// The cluster tests run a second Caddy built with -tags mailgatetest: its
// clock starts MAILGATE_TEST_CLOCK_OFFSET ahead, as the in-process
// instance's is moved by clockOffset, so that two instances of one test
// agree on the time. Builds without the tag have no such setting.
func init() {
	if d, err := time.ParseDuration(os.Getenv("MAILGATE_TEST_CLOCK_OFFSET")); err == nil {
		clockOffset.Store(int64(d))
	}
}
