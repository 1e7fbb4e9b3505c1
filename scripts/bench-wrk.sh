#!/usr/bin/env bash
# Measures what mailgate adds to a proxied request, case by case, against a
# plain reverse_proxy in the same rounds. One Caddy runs pinned to one core
# (taskset -c 0), wrk to another (-t1 -c32), as in issue 10's table:
#
#   known       one session, seen before (a cache hit)
#   redis       the same on a site with the Redis store
#   first       every request a session never seen, into a cache with room
#   past-cache  the same after 65,536+ distinct sessions filled the cache
#   forged      every request a session with a forged MAC (answered 401)
#
# Every row sends the same request through the same wrk script, so that the
# difference is mailgate's work. The ratio is mailgate's requests/s over the
# plain proxy's in the same round; "µs/req" is Caddy's CPU time (user+sys
# from /proc) per request, and "+µs" its difference to plain.
#
#   scripts/bench-wrk.sh [duration] [rounds]
#
# Needs wrk, redis-server, curl and taskset. The figures in
# docs/performance.md come from this script.
set -euo pipefail
duration=${1:-8s}
rounds=${2:-2}
conns=32
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pid= rpid=
trap 'kill $pid $rpid 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

redis-server --port 6391 --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
rpid=$!
go build -o "$work/caddy" "$root/caddy"
go build -o "$work/mint" "$root/scripts/mint-sessions"
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
# The default cache (65,536 sessions): the known, past-cache and forged rows.
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
# A cache with room for every session of the run: the first-sight row.
http://localhost:9005 {
	mailgate {
		base_url http://localhost:9005
		allow email bench@example.com
		outbox $work/outbox
		session_cache 4000000
	}
	reverse_proxy localhost:9001
}
CADDY
cd "$work"
XDG_DATA_HOME=$work/data XDG_CONFIG_HOME=$work/config taskset -c 0 ./caddy run --config Caddyfile >caddy.log 2>&1 &
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
	# The form queues the mail: wait for the outbox to log the link.
	for _ in $(seq 50); do
		link=$(grep -o '"link":"http://localhost:'"$port"'[^"]*"' caddy.log | tail -1 | cut -d'"' -f4 || true)
		[ -n "$link" ] && break
		sleep 0.1
	done
	curl -fs -c "$jar" -b "$jar" -o /dev/null -H "Origin: http://localhost:$port" \
		--data-urlencode "t=${link#*t=}" --data-urlencode "form_token=$form" \
		"http://localhost:$port/.mailgate/link"
	awk '$6=="mailgate"{print $7}' "$jar"
}
known=$(login 9003)
redis=$(login 9004)
for s in "$known" "$redis"; do
	[ -n "$s" ] || { echo "login failed" >&2; cat caddy.log >&2; exit 1; }
done
curl -fs -H "Cookie: mailgate=$known" http://localhost:9003/ | grep -q "hello from upstream"
curl -fs -H "Cookie: mailgate=$redis" http://localhost:9004/ | grep -q "hello from upstream"

# Distinct valid sessions, minted with the realm's stored ring for the user
# the login created: more than any run sends, so none repeats.
mint() { # mint FILE ISSUER N
	./mint -storage "$work/storage" -realm default -issuer "$2" -email bench@example.com -n "$3" >"$1"
}
echo "minting sessions..." >&2
per_run=250000
mint prime.txt http://localhost:9003 70000
for r in $(seq "$rounds"); do
	mint "first.$r.txt" http://localhost:9005 "$per_run"
	mint "past.$r.txt" http://localhost:9003 "$per_run"
done
echo "$known" >known.txt
echo "$redis" >redis.txt
# A forged MAC: the last characters of a real session replaced.
sed 's/....$/AAAA/' known.txt >forged.txt
curl -fs -H "Cookie: mailgate=$(head -1 first.1.txt)" http://localhost:9005/ | grep -q "hello from upstream"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: mailgate=$(cat forged.txt)" http://localhost:9003/)" = 401 ]

cat >tokens.lua <<'LUA'
-- Each request carries the next session of the file named by TOKENS, so
-- that every row pays wrk the same for making its requests.
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do tokens[#tokens + 1] = "mailgate=" .. line end
local i = 0
request = function()
	i = i + 1
	if i > #tokens then i = 1 end
	return wrk.format("GET", "/", { ["Cookie"] = tokens[i] })
end
LUA

cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; } # user+sys, in clock ticks
hz=$(getconf CLK_TCK)
# run NAME PORT TOKENS: prints "NAME req/s µs-per-request"
run() {
	local before after out rps reqs
	before=$(cpu)
	out=$(TOKENS=$3 taskset -c 1 wrk -t1 -c"$conns" -d"$duration" -s tokens.lua "http://localhost:$2/")
	after=$(cpu)
	rps=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
	reqs=$(awk '/requests in/{print $1}' <<<"$out")
	if [ "$reqs" -gt "$(wc -l <"$3")" ] && [ "$3" != known.txt ] && [ "$3" != redis.txt ] && [ "$3" != forged.txt ]; then
		echo "warning: $1 sent $reqs requests but had $(wc -l <"$3") sessions; some repeated" >&2
	fi
	awk -v n="$1" -v r="$rps" -v q="$reqs" -v c=$((after - before)) -v hz="$hz" \
		'BEGIN{printf "%s %s %.1f\n", n, r, c * 1e6 / hz / q}'
}

# Fill the default site's cache past its size before the rows that need it.
TOKENS=prime.txt taskset -c 1 wrk -t1 -c"$conns" -d"$duration" -s tokens.lua http://localhost:9003/ >/dev/null

results=$work/results
for r in $(seq "$rounds"); do
	{
		run "plain" 9002 "first.$r.txt"
		run "known" 9003 known.txt
		run "redis" 9004 redis.txt
		run "first" 9005 "first.$r.txt"
		run "past-cache" 9003 "past.$r.txt"
		run "forged" 9003 forged.txt
		run "plain" 9002 "past.$r.txt"
	} | sed "s/^/$r /" >>"$results"
done

# Throughput on a shared machine moves by several percent between runs, more
# than the guard costs; a CPU profile of Caddy during a run tells mailgate's
# own share exactly: the guard's time, less the reverse_proxy it calls.
# profile NAME PORT TOKENS: prints "NAME guard-µs-per-request share"
profile() {
	local secs=${duration%s} out reqs
	curl -fs -o "prof.$1" "http://localhost:9019/debug/pprof/profile?seconds=$secs" &
	local cpid=$!
	out=$(TOKENS=$3 taskset -c 1 wrk -t1 -c"$conns" -d"$duration" -s tokens.lua "http://localhost:$2/")
	wait $cpid
	reqs=$(awk '/requests in/{print $1}' <<<"$out")
	go tool pprof -top -cum -nodecount=100000 "prof.$1" 2>/dev/null | awk -v n="$1" -v q="$reqs" '
		function secs(v) { return v ~ /ms$/ ? v / 1000 : v ~ /[uµ]s$/ ? v / 1e6 : v + 0 }
		/Total samples/ { for (i = 1; i <= NF; i++) if ($i == "=") total = secs($(i + 1)) }
		/caddymodule.\(\*Mailgate\).guard$/ { g = secs($4) }
		/reverseproxy.\(\*Handler\).ServeHTTP$/ { p = secs($4) }
		END { printf "%s %.2f %.1f%%\n", n, (g - p) * 1e6 / q, (g - p) * 100 / total }'
}
mint first.p.txt http://localhost:9005 "$per_run"
mint past.p.txt http://localhost:9003 "$per_run"
for case in "known 9003 known.txt" "first 9005 first.p.txt" "past-cache 9003 past.p.txt" "forged 9003 forged.txt"; do
	# shellcheck disable=SC2086 # split on purpose
	profile $case >>"$work/profiles"
done

echo "Caddy pinned to one core, wrk -t1 -c$conns -d$duration, $(nproc) cores, $(date -u +%Y-%m-%d)"
printf '%-6s %-11s %10s %7s %8s %8s\n' round case "req/s" ratio "µs/req" "+µs"
awk '
	$2 == "plain" { if (!($1 in prps)) { prps[$1] = $3; pcpu[$1] = $4 } else { prps[$1] = ($3 + prps[$1]) / 2; pcpu[$1] = ($4 + pcpu[$1]) / 2 } next }
	{ row[NR] = $0 }
	END {
		for (i = 1; i <= NR; i++) if (i in row) {
			split(row[i], f, " ")
			printf "%-6s %-11s %10.0f %6.2fx %8.1f %+8.1f\n", f[1], f[2], f[3], f[3] / prps[f[1]], f[4], f[4] - pcpu[f[1]]
		}
		for (r in prps) printf "%-6s %-11s %10.0f %6.2fx %8.1f %+8.1f\n", r, "plain (avg)", prps[r], 1, pcpu[r], 0
	}' "$results"
echo
echo "mailgate's own CPU per request, from a profile of Caddy (guard less the reverse_proxy it calls):"
printf '%-11s %8s %8s\n' case "µs/req" "share"
awk '{ printf "%-11s %8s %8s\n", $1, $2, $3 }' "$work/profiles"

# The table's other rows come from Go benchmarks: a cached session's memory,
# a million pending links, mails per second over reused SMTP connections.
echo
echo "memory per cached session, 1,000,000 pending links, SMTP with STARTTLS:"
cd "$root"
go test -run '^$' -bench 'CachedSessionMemory' -benchtime 1x ./caddymodule | awk '/B\/session/ { for (i = 1; i <= NF; i++) if ($i == "B/session") print "  " $(i - 1) " bytes per cached session" }'
go test -run '^$' -bench 'MillionPendingLinks' -benchtime 1x ./internal/ticket | awk '/MiB-heap/ { print "  " $0 }'
go test -run '^$' -bench 'SMTP' -benchtime 2s ./internal/mail | awk '/mails\/s/ { print "  " $0 }'
