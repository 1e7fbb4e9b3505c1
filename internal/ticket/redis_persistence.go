package ticket

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// checkPersistence tells the operator, once when the store opens, about a
// Redis that keeps nothing on disk. Such a Redis comes back empty from a
// restart: the revocation log is gone, so a Caddy instance that starts after
// it (a restart, a new node) accepts logged-out sessions again until they
// expire, while the instances that kept running still refuse them. A Redis
// that does not let mailgate look (CONFIG refused by an ACL, or renamed by
// a managed service) is reported at info level: it may well be persistent.
func (r *Redis) checkPersistence() {
	// The client's timeouts bound each command, as in load.
	persists, err := redisPersists(context.Background(), r.client)
	switch {
	case err != nil:
		r.log.Info("could not check whether Redis persists its data (AOF or RDB snapshots); "+
			"without persistence a Redis restart revives logged-out sessions on Caddy instances that start after it",
			zap.Error(err))
	case !persists:
		r.log.Warn("Redis keeps no persistence (appendonly no and no save points): after a Redis restart, " +
			"Caddy instances that start revive logged-out sessions and forget pending links; " +
			"run Redis with appendonly yes or with save points")
	}
}

// redisPersists reports whether Redis writes its data to disk, by its
// append-only file or by RDB snapshots. It asks CONFIG GET; when that is
// refused it falls back on INFO persistence, which tells whether AOF is on
// but not whether snapshots are scheduled, so it can only confirm.
func redisPersists(ctx context.Context, c redis.UniversalClient) (bool, error) {
	persists, cfgErr := configPersists(ctx, c)
	if cfgErr == nil {
		return persists, nil
	}
	info, err := c.Info(ctx, "persistence").Result()
	if err != nil {
		return false, fmt.Errorf("CONFIG GET: %w; INFO persistence: %w", cfgErr, err)
	}
	if infoField(info, "aof_enabled") == "1" {
		return true, nil
	}
	return false, fmt.Errorf("CONFIG GET: %w; INFO persistence shows AOF off and cannot tell about snapshots", cfgErr)
}

// configPersists reads appendonly and save. They are asked one at a time:
// CONFIG GET with several parameters needs Redis 7, and mailgate runs on 6.2.
func configPersists(ctx context.Context, c redis.UniversalClient) (bool, error) {
	aof, err := c.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		return false, err
	}
	if aof["appendonly"] == "yes" {
		return true, nil
	}
	save, err := c.ConfigGet(ctx, "save").Result()
	if err != nil {
		return false, err
	}
	points, ok := save["save"]
	if _, known := aof["appendonly"]; !known || !ok {
		// A server that answers but knows neither setting is no Redis
		// whose persistence can be judged from them.
		return false, errors.New("the answers hold no appendonly or save setting")
	}
	return strings.TrimSpace(points) != "", nil
}

// infoField returns the value of name in an INFO answer's "name:value"
// lines, or "".
func infoField(info, name string) string {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), name+":"); ok {
			return v
		}
	}
	return ""
}
