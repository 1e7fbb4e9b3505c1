#!/usr/bin/env bash
# Measures what mailgate adds to a proxied request: wrk against a plain
# reverse_proxy and against mailgate + reverse_proxy with a valid session,
# both in front of the same upstream, all in one Caddy on loopback.
#
#   scripts/bench-wrk.sh [duration] [connections]
#
# Needs wrk (apt-get install wrk) and curl. Prints wrk's reports; the figures
# in docs/performance.md come from this script.
set -euo pipefail
duration=${1:-15s}
conns=${2:-64}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

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
CADDY
cd "$work"
XDG_DATA_HOME=$work/data XDG_CONFIG_HOME=$work/config ./caddy run --config Caddyfile >caddy.log 2>&1 &
pid=$!
for _ in $(seq 50); do curl -fs -o /dev/null http://localhost:9002/ && break; sleep 0.1; done

# Log in through the real flow: form, mailed link (from the outbox log), confirm.
jar=$work/jar
curl -fs -c "$jar" -b "$jar" -o /dev/null http://localhost:9003/.mailgate/login
form=$(awk '$6=="mailgate-form"{print $7}' "$jar")
curl -fs -c "$jar" -b "$jar" -o /dev/null -H 'Origin: http://localhost:9003' \
	--data-urlencode email=bench@example.com --data-urlencode "form_token=$form" \
	http://localhost:9003/.mailgate/login/email
link=$(grep -o '"link":"[^"]*"' caddy.log | tail -1 | cut -d'"' -f4)
curl -fs -c "$jar" -b "$jar" -o /dev/null -H 'Origin: http://localhost:9003' \
	--data-urlencode "t=${link#*t=}" --data-urlencode "form_token=$form" \
	http://localhost:9003/.mailgate/link
session=$(awk '$6=="mailgate"{print $7}' "$jar")
[ -n "$session" ] || { echo "login failed" >&2; cat caddy.log >&2; exit 1; }
curl -fs -H "Cookie: mailgate=$session" http://localhost:9003/ | grep -q "hello from upstream"

# Both runs send the same cookie, so the proxied requests are the same size
# and the difference is mailgate's work. Alternated, to see the noise.
for round in 1 2; do
	echo "== plain reverse_proxy (round $round)"
	wrk -t2 -c"$conns" -d"$duration" --latency -H "Cookie: mailgate=$session" http://localhost:9002/
	echo "== mailgate + reverse_proxy, valid session (round $round)"
	wrk -t2 -c"$conns" -d"$duration" --latency -H "Cookie: mailgate=$session" http://localhost:9003/
done
echo "== mailgate, no session (401)"
wrk -t2 -c"$conns" -d"$duration" --latency http://localhost:9003/
