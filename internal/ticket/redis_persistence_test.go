package ticket

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mailgate/caddy-mailgate/internal/redistest"
)

// openObserved opens a store on srv whose log the test reads.
func openObserved(t *testing.T, cfg RedisConfig) *observer.ObservedLogs {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	r, err := NewRedis(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return logs
}

// persistenceLines are the store's log lines about persistence.
func persistenceLines(logs *observer.ObservedLogs) []observer.LoggedEntry {
	return logs.FilterMessageSnippet("persist").All()
}

// A Redis that keeps nothing on disk is warned about when the store opens;
// one with an append-only file or with snapshots is not.
func TestRedisPersistenceWarning(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		warn bool
	}{
		{"no persistence", []string{"--save", "", "--appendonly", "no"}, true},
		{"append-only file", []string{"--appendonly", "yes"}, false},
		{"snapshots", []string{"--save", "60 1"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := redistest.Start(t, c.args...)
			lines := persistenceLines(openObserved(t, RedisConfig{Address: srv.Addr(), KeyPrefix: testPrefix()}))
			switch {
			case c.warn && (len(lines) != 1 || lines[0].Level != zapcore.WarnLevel):
				t.Fatalf("want one warning about persistence, got %+v", lines)
			case !c.warn && len(lines) != 0:
				t.Fatalf("want nothing about persistence, got %+v", lines)
			}
		})
	}
}

// A Redis whose ACL refuses CONFIG cannot be judged: the operator is told
// at info level that it could not be checked, and is not warned.
func TestRedisPersistenceUncheckable(t *testing.T) {
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	if err := admin.Do(context.Background(), "ACL", "SETUSER", "mailgate", "on", ">mailgate-password", "~*", "&*", "+@all", "-config").Err(); err != nil {
		t.Fatal(err)
	}
	lines := persistenceLines(openObserved(t, RedisConfig{
		Address: srv.Addr(), Username: "mailgate", Password: "mailgate-password", KeyPrefix: testPrefix(),
	}))
	if len(lines) != 1 || lines[0].Level != zapcore.InfoLevel || !strings.Contains(lines[0].Message, "could not check") {
		t.Fatalf("want one info line saying persistence could not be checked, got %+v", lines)
	}
}
