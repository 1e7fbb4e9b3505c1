#!/usr/bin/env bash
# Measures what mailgate adds to a proxied request, case by case, against a
# plain reverse_proxy in the same Caddy process, the way issue 19 asks:
#
#   - one Caddy pinned to core 0 (taskset -c 0, so GOMAXPROCS=1) serves a
#     plain reverse_proxy site and the mailgate sites; wrk (-t1 -c32) and
#     the upstream (a second Caddy answering "respond") run on core 1;
#   - each case alternates 5 s runs of plain (A) and mailgate (M), A,M then
#     M,A, over at least 15 pairs, so that drift on a shared machine falls
#     on both sides alike;
#   - a run is discarded, with its pair, when something other than Caddy
#     took more than 0.10 of core 0 during it (user+system time of core 0
#     from /proc/stat, less Caddy's own, plus steal), and the pair is run
#     again, up to twice the pairs asked for;
#   - both sides of a pair send the same cookie (a session of about 420
#     characters); a case whose sessions must be new on every request gets
#     a freshly minted file per pair, which plain sends too.
#
# Cases (all by default):
#
#   known        one session, seen before (a cache hit), with the signed
#                assertion (the default)
#   known-noassert  the same on a site with `assertion off`
#   known-idle   known, on a site with `session_idle 30m` (the guard
#                re-issues a session in use at most once a minute)
#   idle         known-idle against known (A is mailgate without
#                session_idle): what the inactivity limit itself costs
#   first        every request a session never seen, into a cache with room
#   past         the same, after 70,000 sessions filled the default cache
#   forged       a session whose MAC is forged (answered 401)
#   garbage      random base64url characters as long as a session (401)
#   none         no cookie at all, on both sides (401)
#   redis-known  known, on a site with the Redis store
#   redis-first  first, on a site with the Redis store
#   cookie       plain without a cookie against plain with the session
#                cookie: what proxying the cookie costs, which plain pays
#                and mailgate does not (it takes its cookies out)
#   flood        known, alone (A) against known while a flood of wrong
#                passwords (wrk -c16, each for a new unknown account, so
#                each costs a decoy argon2id hash) hits seed 004's sign-in
#                on a site of the same process whose limits let every try
#                through (M): what the guard keeps while Caddy hashes at
#                its limit; also prints the flood's answers per second
#   flood-limited  the same, the flood on a site with the default limits
#                (failures_per_ip): what one attacker's IP gets through
#
# For each case it prints mailgate's requests/s over plain's in the same
# pair (median and range) and the difference in Caddy's CPU time per
# request (user+sys from /proc/PID/stat, over wrk's request count); the
# first-seen case also measures a cached session's RSS and live heap.
#
#   scripts/bench-wrk.sh [-d 5s] [-n 15] [-f 0.10] [case ...]
#
# CADDY=path uses a Caddy already built with mailgate; PROFILE=dir also
# saves a CPU profile of Caddy during one more A and M run per case
# (dir/CASE.plain.pprof, dir/CASE.mailgate.pprof), to compare with
# `go tool pprof -diff_base`. KEEP=1 keeps the work folder. Needs wrk,
# redis-server, curl, taskset and Go.
set -euo pipefail
duration=5s
pairs=15
maxforeign=0.10
while getopts d:n:f: o; do
	case $o in
	d) duration=$OPTARG ;;
	n) pairs=$OPTARG ;;
	f) maxforeign=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
cases=${*:-known known-noassert known-idle first past forged garbage none redis-known redis-first cookie flood flood-limited}
conns=32
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pid= upid= rpid= fpid=
trap 'kill $pid $upid $rpid $fpid 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

caddy=${CADDY:-}
if [ -z "$caddy" ]; then
	caddy=$work/caddy
	go build -o "$caddy" "$root/caddy"
fi
go build -o "$work/mint" "$root/scripts/mint-sessions"
redis-server --port 6391 --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
rpid=$!

cat >"$work/Upstream" <<CADDY
{
	admin off
	storage file_system $work/upstream
}
http://localhost:9001 {
	respond "hello from upstream"
}
CADDY
cat >"$work/Caddyfile" <<CADDY
{
	admin localhost:9019
	storage file_system $work/storage
}
http://localhost:9002 {
	reverse_proxy localhost:9001
}
# The default cache (65,536 sessions): known, past, forged, garbage, none;
# with the default limits, the flood-limited case's sign-in.
http://localhost:9003 {
	mailgate {
		base_url http://localhost:9003
		allow email bench@example.com
		outbox $work/outbox
		client bench {
			sign_in
			cors_origin http://localhost:9003
		}
	}
	reverse_proxy localhost:9001
}
# known-noassert: a known session without the signed assertion.
http://localhost:9007 {
	mailgate {
		realm noassert
		base_url http://localhost:9007
		allow email bench@example.com
		outbox $work/outbox
		assertion off
	}
	reverse_proxy localhost:9001
}
# known-idle: a known session on a site with an inactivity limit.
http://localhost:9008 {
	mailgate {
		realm idle
		base_url http://localhost:9008
		allow email bench@example.com
		outbox $work/outbox
		session_idle 30m
	}
	reverse_proxy localhost:9001
}
# The flood case's sign-in: limits that let every wrong password be hashed.
http://localhost:9006 {
	mailgate {
		realm flood
		base_url http://localhost:9006
		allow email bench@example.com
		outbox $work/outbox
		client bench {
			sign_in
			cors_origin http://localhost:9006
		}
		limits {
			failures_per_ip 1000000 1s
		}
	}
	reverse_proxy localhost:9001
}
# The Redis store, with room for every session of the run.
http://localhost:9004 {
	mailgate {
		realm redis
		base_url http://localhost:9004
		allow email bench@example.com
		outbox $work/outbox
		session_cache 4000000
		store redis {
			address 127.0.0.1:6391
		}
	}
	reverse_proxy localhost:9001
}
# A cache with room for every session of the run: the first-seen case.
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
XDG_DATA_HOME=$work/udata XDG_CONFIG_HOME=$work/uconfig taskset -c 1 "$caddy" run --adapter caddyfile --config Upstream >upstream.log 2>&1 &
upid=$!
XDG_DATA_HOME=$work/data XDG_CONFIG_HOME=$work/config taskset -c 0 "$caddy" run --config Caddyfile >caddy.log 2>&1 &
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
		--data-urlencode "t=$(sed 's/.*[?&]t=\([^&]*\).*/\1/' <<<"$link")" --data-urlencode "form_token=$form" \
		"http://localhost:$port/.mailgate/link"
	awk '$6=="mailgate"{print $7}' "$jar"
}
login 9003 >known.txt
login 9004 >redis.txt
login 9005 >/dev/null # creates the user the first-seen sessions name
login 9007 >noassert.txt
login 9008 >idle.txt
for f in known.txt redis.txt noassert.txt idle.txt; do
	[ -s "$f" ] || { echo "login failed" >&2; cat caddy.log >&2; exit 1; }
done
curl -fs -H "Cookie: mailgate=$(cat known.txt)" http://localhost:9003/ | grep -q "hello from upstream"
curl -fs -H "Cookie: mailgate=$(cat redis.txt)" http://localhost:9004/ | grep -q "hello from upstream"
# A forged MAC: the last characters of a real session replaced.
sed 's/....$/AAAA/' known.txt >forged.txt
# Garbage of the same length, in the cookie's alphabet.
head -c 4096 /dev/urandom | base64 -w0 | tr '+/' '-_' | head -c "$(($(wc -c <known.txt) - 1))" >garbage.txt
echo >>garbage.txt
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: mailgate=$(cat forged.txt)" http://localhost:9003/)" = 401 ]

# mint FILE REALM ISSUER N: distinct valid sessions, made with the realm's
# stored ring for the user its login created, on core 1.
mint() {
	taskset -c 1 ./mint -storage "$work/storage" -realm "$2" -issuer "$3" -email bench@example.com -n "$4" >"$1"
}
secs=${duration%s}
fresh=$((secs * 12000)) # more sessions than a run sends at ~7,000 requests/s

cat >tokens.lua <<'LUA'
-- Each request carries the next line of the file named by TOKENS as the
-- session cookie, or no cookie when TOKENS is empty.
local tokens = {}
local file = os.getenv("TOKENS")
if file ~= "" then
	for line in io.lines(file) do tokens[#tokens + 1] = "mailgate=" .. line end
end
local i = 0
request = function()
	if #tokens == 0 then return wrk.format("GET", "/") end
	i = i + 1
	if i > #tokens then i = 1 end
	return wrk.format("GET", "/", { ["Cookie"] = tokens[i] })
end
LUA

cat >flood.lua <<'LUA'
-- Wrong passwords for accounts that do not exist, a new one per request
-- (so no account's lockout answers before the decoy hash), posted to seed
-- 004's sign-in as the client "bench" from the site's own origin. Counts
-- the answers by status and prints them when done.
local origin, run = os.getenv("FLOOD_ORIGIN"), os.getenv("FLOOD_RUN")
local n, threads = 0, {}
counts = {} -- a global, for done() to read through thread:get
setup = function(thread) table.insert(threads, thread) end
request = function()
	n = n + 1
	local body = string.format('{"username":"nobody-%s-%d@example.com","password":"not the password of anyone here","clientId":"bench"}', run, n)
	return wrk.format("POST", "/.mailgate/api/account/login",
		{ ["Content-Type"] = "application/json", ["Origin"] = origin }, body)
end
response = function(status) counts[status] = (counts[status] or 0) + 1 end
done = function()
	for _, t in ipairs(threads) do
		for status, c in pairs(t:get("counts")) do print("status " .. status .. " " .. c) end
	end
end
LUA

# flood PORT SECONDS: a flood of wrong passwords at PORT's sign-in for as
# long, on core 1, in the background (fpid); its answers go to flood.out.
# Each flood names its accounts afresh, so none is locked by an earlier one.
flood() {
	FLOOD_ORIGIN=http://localhost:$1 FLOOD_RUN=$RANDOM$RANDOM$RANDOM taskset -c 1 wrk -t1 -c16 -d"$2" -s flood.lua "http://localhost:$1/" >flood.out 2>&1 &
	fpid=$!
}
# flooded prints the last flood's answers per second: wrong-password
# answers (400), refusals by a limit (429), hashing busy (503), other.
flooded() {
	wait "$fpid" || true
	fpid=
	awk -v d="$secs" '/^status/ { c[$2] += $3 } END {
		printf "%.1f %.1f %.1f %.1f\n", c[400] / d, c[429] / d, c[503] / d, (c[200] + c[401] + c[403] + c[500]) / d }' flood.out
}

# core0 prints core 0's user+nice+system ticks, its steal ticks and all its
# ticks; caddycpu Caddy's user+sys ticks (all spent on core 0).
core0() { awk '$1 == "cpu0" { print $2 + $3 + $4, $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
caddycpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)

# run PORT TOKENS [PROFILE]: one wrk run; prints "req/s µs-per-request
# foreign-load requests", Caddy's CPU per request and the share of core 0
# that went to anything else.
run() {
	local c0 c1 p0 p1 out rps reqs cpid=
	[ -z "${3:-}" ] || { curl -fs -o "$3" "http://localhost:9019/debug/pprof/profile?seconds=$secs" & cpid=$!; }
	read -r -a c0 < <(core0)
	p0=$(caddycpu)
	out=$(TOKENS=$2 taskset -c 1 wrk -t1 -c"$conns" -d"$duration" -s tokens.lua "http://localhost:$1/")
	p1=$(caddycpu)
	read -r -a c1 < <(core0)
	[ -z "$cpid" ] || wait "$cpid"
	rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
	reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
	if [ -n "$2" ] && [ "$reqs" -gt "$(wc -l <"$2")" ] && [[ $2 == fresh* ]]; then
		echo "warning: $reqs requests but $(wc -l <"$2") sessions; some repeated" >&2
	fi
	awk -v r="$rps" -v q="$reqs" -v c=$((p1 - p0)) -v hz="$hz" \
		-v busy=$((c1[0] - c0[0])) -v steal=$((c1[1] - c0[1])) -v all=$((c1[2] - c0[2])) \
		'BEGIN { f = (busy - c + steal) / all; printf "%s %.2f %.3f %d\n", r, c * 1e6 / hz / q, f < 0 ? 0 : f, q }'
}

# mrun is run for the mailgate side: beside a flood, in the cases that
# have one, whose answers per second go to the flood results with the
# run's ok flag left to the pair.
mrun() {
	[ -n "$floodport" ] || { run "$@"; return; }
	flood "$floodport" "$duration"
	local out
	out=$(run "$@")
	echo "$c $(flooded)" >>"$work/floods"
	echo "$out"
}

# sides CASE: prints "plain-port plain-tokens mailgate-port mailgate-tokens
# fresh-realm fresh-port"; "-" for no cookie; a fresh realm means a new
# file of sessions per pair, sent by both sides.
sides() {
	case $1 in
	known) echo 9002 known.txt 9003 known.txt - - ;;
	known-noassert) echo 9002 noassert.txt 9007 noassert.txt - - ;;
	known-idle) echo 9002 idle.txt 9008 idle.txt - - ;;
	idle) echo 9003 known.txt 9008 idle.txt - - ;;
	first) echo 9002 fresh 9005 fresh default 9005 ;;
	past) echo 9002 fresh 9003 fresh default 9003 ;;
	forged) echo 9002 forged.txt 9003 forged.txt - - ;;
	garbage) echo 9002 garbage.txt 9003 garbage.txt - - ;;
	none) echo 9002 - 9003 - - - ;;
	redis-known) echo 9002 redis.txt 9004 redis.txt - - ;;
	redis-first) echo 9002 fresh 9004 fresh redis 9004 ;;
	cookie) echo 9002 known.txt 9002 - - - ;;
	flood | flood-limited) echo 9003 known.txt 9003 known.txt - - ;;
	*) echo "unknown case $1" >&2; exit 2 ;;
	esac
}

# memory prints Caddy's resident and live heap bytes after a forced GC.
memory() {
	curl -fs -o /dev/null "http://localhost:9019/debug/pprof/heap?gc=1"
	sleep 1
	echo "$(($(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status") * 1024))" \
		"$(curl -fs http://localhost:9019/metrics | awk '/^go_memstats_heap_alloc_bytes / { printf "%d", $2 }')"
}

results=$work/results
: >"$results"
for c in $cases; do
	read -r aport atok mport mtok realm fport < <(sides "$c")
	if [ "$c" = past ]; then
		echo "past: filling the default cache with 70,000 sessions..." >&2
		mint prime.txt default http://localhost:9003 70000
		TOKENS=prime.txt taskset -c 1 wrk -t1 -c"$conns" -d15s -s tokens.lua http://localhost:9003/ >/dev/null
		rm prime.txt
	fi
	# The first-seen case also measures what a cached session costs: every
	# session it sends stays in the roomy cache, so Caddy's resident memory
	# and live heap, each after a forced GC, grow by that much per session.
	# Resident memory counts what the live heap does not: the room the
	# garbage collector lets the heap grow into, memory not yet returned.
	[ "$c" != first ] || { read -r rss0 heap0 < <(memory); sent=0; }
	floodport=
	case $c in flood) floodport=9006 ;; flood-limited) floodport=9003 ;; esac
	kept=0 tried=0
	while [ "$kept" -lt "$pairs" ] && [ "$tried" -lt $((2 * pairs)) ]; do
		tried=$((tried + 1))
		if [ "$realm" != - ]; then
			mint fresh.txt "$realm" "http://localhost:$fport" "$fresh"
			atok=fresh.txt mtok=fresh.txt
		fi
		[ "$atok" != - ] || atok=
		[ "$mtok" != - ] || mtok=
		if [ $((tried % 2)) = 1 ]; then
			a=$(run "$aport" "$atok") m=$(mrun "$mport" "$mtok")
		else
			m=$(mrun "$mport" "$mtok") a=$(run "$aport" "$atok")
		fi
		[ "$atok" != "" ] || atok=-
		[ "$mtok" != "" ] || mtok=-
		read -r arps aus af _ <<<"$a"
		read -r mrps mus mf mreqs <<<"$m"
		[ "$c" != first ] || sent=$((sent + mreqs))
		ok=$(awk -v a="$af" -v m="$mf" -v x="$maxforeign" 'BEGIN { print (a <= x && m <= x) ? 1 : 0 }')
		[ "$ok" = 0 ] || kept=$((kept + 1))
		echo "$c $ok $arps $aus $af $mrps $mus $mf" >>"$results"
		printf '%s pair %d: plain %s/s %s µs, mailgate %s/s %s µs, foreign %s %s%s\n' \
			"$c" "$tried" "$arps" "$aus" "$mrps" "$mus" "$af" "$mf" "$([ "$ok" = 1 ] || echo ' (discarded)')" >&2
	done
	if [ "$c" = first ]; then
		read -r rss1 heap1 < <(memory)
		echo "$(((rss1 - rss0) / sent)) $(((heap1 - heap0) / sent)) $sent" >"$work/memory"
	fi
	if [ -n "${PROFILE:-}" ]; then
		mkdir -p "$PROFILE"
		[ "$realm" = - ] || { mint fresh.txt "$realm" "http://localhost:$fport" "$fresh"; atok=fresh.txt mtok=fresh.txt; }
		[ "$atok" != - ] || atok=
		[ "$mtok" != - ] || mtok=
		# Beside each profile, its run's "req/s µs-per-request foreign-load"
		# and request count, to turn the profile's seconds into µs/request.
		run "$aport" "$atok" "$PROFILE/$c.plain.pprof" >"$PROFILE/$c.plain.run"
		mrun "$mport" "$mtok" "$PROFILE/$c.mailgate.pprof" >"$PROFILE/$c.mailgate.run"
	fi
done
[ -z "${KEEP:-}" ] || echo "work folder: $work" >&2

echo "Caddy pinned to core 0, upstream and wrk -t1 -c$conns on core 1, $duration runs in A,M / M,A pairs;"
echo "$(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%d);"
echo "session cookie $(($(wc -c <known.txt) - 1 + 9)) characters; pairs with a run above $maxforeign foreign load on core 0 discarded."
echo
printf '| %-11s | %-22s | %-22s | %-8s | %-10s | %-15s |\n' case "mailgate / plain" "+µs Caddy CPU/request" "plain µs" "pairs kept" "foreign load"
echo '|---|---:|---:|---:|---:|---:|'
awk '
	function median(a, n,   i, j, t) {
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	!($1 in seen) { seen[$1] = 1; order[++ncases] = $1 }
	{
		tried[$1]++
		f[$1, tried[$1] * 2 - 1] = $5; f[$1, tried[$1] * 2] = $8
		if ($2 == 1) { k = ++kept[$1]; r[$1, k] = $6 / $3; d[$1, k] = $7 - $4; p[$1, k] = $4 }
	}
	END {
		for (i = 1; i <= ncases; i++) {
			c = order[i]; n = kept[c]
			for (j = 1; j <= 2 * tried[c]; j++) ff[j] = f[c, j]
			fmed = median(ff, 2 * tried[c]); fmax = ff[2 * tried[c]]
			if (n == 0) { printf "| %-11s | %-22s | %-22s | %-8s | %4d / %-3d | %.3f (max %.2f) |\n", c, "-", "-", "-", 0, tried[c], fmed, fmax; continue }
			for (j = 1; j <= n; j++) { rr[j] = r[c, j]; dd[j] = d[c, j]; pp[j] = p[c, j] }
			rm = median(rr, n); dm = median(dd, n); pm = median(pp, n)
			printf "| %-11s | %.3f× (%.2f–%.2f) | %+.1f (%+.1f to %+.1f) | %8.1f | %4d / %-3d | %.3f (max %.2f) |\n",
				c, rm, rr[1], rr[n], dm, dd[1], dd[n], pm, n, tried[c], fmed, fmax
		}
	}' "$results"
echo
echo "\"cookie\" is plain without a cookie over plain with the same session cookie; \"idle\" is mailgate with session_idle over mailgate without it."
if [ -s "$work/floods" ]; then
	echo
	echo "The floods beside the mailgate runs, median answers per second (range):"
	awk '
		function median(a, n,   i, j, t) {
			for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		!($1 in seen) { seen[$1] = 1; order[++nc] = $1 }
		{ k = ++n[$1]; for (i = 2; i <= 5; i++) v[$1, i, k] = $i }
		END {
			split("wrong password (400),limited (429),busy (503),other", name, ",")
			for (o = 1; o <= nc; o++) {
				c = order[o]; line = ""
				for (i = 2; i <= 5; i++) {
					for (j = 1; j <= n[c]; j++) a[j] = v[c, i, j]
					m = median(a, n[c])
					line = line sprintf("%s%s %.1f/s (%.1f–%.1f)", i > 2 ? ", " : "", name[i - 1], m, a[1], a[n[c]])
				}
				printf "- %s: %s\n", c, line
			}
		}' "$work/floods"
fi
if [ -s "$work/memory" ]; then
	read -r rss heap sent <"$work/memory"
	echo "memory per cached session ($sent in the first-seen site's cache): RSS $rss bytes, live heap $heap bytes"
fi
