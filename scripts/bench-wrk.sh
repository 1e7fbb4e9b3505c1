#!/usr/bin/env bash
# Measures what mailgate adds to a proxied request: wrk against a plain
# reverse_proxy, against mailgate + reverse_proxy with the memory store, and
# against mailgate + reverse_proxy with the Redis store, all with a valid
# session, all in front of the same upstream, in one Caddy on loopback.
#
#   scripts/bench-wrk.sh [duration] [connections]
#
# Needs wrk and redis-server (apt-get install wrk redis-server) and curl.
# Prints wrk's reports; the figures in docs/performance.md come from this
# script.
set -euo pipefail
duration=${1:-15s}
conns=${2:-64}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pid= rpid=
trap 'kill $pid $rpid 2>/dev/null || true; rm -rf "$work"' EXIT

redis-server --port 6391 --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
rpid=$!
go build -o "$work/caddy" "$root/caddy"
cat >"$work/Caddyfile" <<CADDY
{
	admin localhost:9019
	storage file_system $work/storage
}
http://localhost:9001 {
	respond "hello from upstream"
}
http://localhost:9002 {
	reverse_proxy localhost:9001
}
http://localhost:9003 {
	mailgate {
		base_url http://localhost:9003
		allow email bench@example.com
		outbox $work/outbox
	}
	reverse_proxy localhost:9001
}
http://localhost:9004 {
	mailgate {
		realm redis
		base_url http://localhost:9004
		allow email bench@example.com
		outbox $work/outbox
		store redis {
			address 127.0.0.1:6391
		}
	}
	reverse_proxy localhost:9001
}
CADDY
cd "$work"
XDG_DATA_HOME=$work/data XDG_CONFIG_HOME=$work/config ./caddy run --config Caddyfile >caddy.log 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs -o /dev/null http://localhost:9002/ && break; sleep 0.1; done

# login PORT logs in through the real flow (form, mailed link from the
# outbox log, confirm) and prints the session cookie. Form tokens are
# single-use, so each post takes the one the answer before it set.
login() {
	local port=$1 jar=$work/jar.$1 form link
	curl -fs -c "$jar" -b "$jar" -o /dev/null "http://localhost:$port/.mailgate/login"
	form=$(awk '$6=="mailgate-form"{print $7}' "$jar")
	curl -fs -c "$jar" -b "$jar" -o /dev/null -H "Origin: http://localhost:$port" \
		--data-urlencode email=bench@example.com --data-urlencode "form_token=$form" \
		"http://localhost:$port/.mailgate/login/email"
	form=$(awk '$6=="mailgate-form"{print $7}' "$jar")
	link=$(grep -o '"link":"http://localhost:'"$port"'[^"]*"' caddy.log | tail -1 | cut -d'"' -f4)
	curl -fs -c "$jar" -b "$jar" -o /dev/null -H "Origin: http://localhost:$port" \
		--data-urlencode "t=${link#*t=}" --data-urlencode "form_token=$form" \
		"http://localhost:$port/.mailgate/link"
	awk '$6=="mailgate"{print $7}' "$jar"
}
memory=$(login 9003)
redis=$(login 9004)
for s in "$memory" "$redis"; do
	[ -n "$s" ] || { echo "login failed" >&2; cat caddy.log >&2; exit 1; }
done
curl -fs -H "Cookie: mailgate=$memory" http://localhost:9003/ | grep -q "hello from upstream"
curl -fs -H "Cookie: mailgate=$redis" http://localhost:9004/ | grep -q "hello from upstream"

# Every run sends a cookie of the same size, so the proxied requests are
# the same and the difference is mailgate's work. Alternated, to see the
# noise.
for round in 1 2; do
	echo "== plain reverse_proxy (round $round)"
	wrk -t2 -c"$conns" -d"$duration" --latency -H "Cookie: mailgate=$memory" http://localhost:9002/
	echo "== mailgate (memory store) + reverse_proxy, valid session (round $round)"
	wrk -t2 -c"$conns" -d"$duration" --latency -H "Cookie: mailgate=$memory" http://localhost:9003/
	echo "== mailgate (redis store) + reverse_proxy, valid session (round $round)"
	wrk -t2 -c"$conns" -d"$duration" --latency -H "Cookie: mailgate=$redis" http://localhost:9004/
done
echo "== mailgate, no session (401)"
wrk -t2 -c"$conns" -d"$duration" --latency http://localhost:9003/
