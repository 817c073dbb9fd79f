#!/usr/bin/env bash
# bench/run.sh — the load benchmark behind `make bench` (see the README, "Performance").
#
# Starts, on 127.0.0.1 only: a tiny upstream app, a minimal forward_auth
# service, and two Caddy processes built from this repository (bin/caddy)
# with a generated Caddyfile — one holding BENCH_SESSIONS_SMALL live
# sessions, one holding BENCH_SESSIONS_LARGE — preloaded through the OAM API.
# Then measures every configuration with wrk, interleaved round by round
# (A B C … A B C …), and writes bench/results/<date>.md.
#
# Tunables (environment): BENCH_DURATION (5s), BENCH_ROUNDS (5),
# BENCH_CONNS (32), BENCH_THREADS (2), BENCH_SESSIONS_SMALL (1000),
# BENCH_SESSIONS_LARGE (1000000), BENCH_PRELOAD_CONNS (32),
# BENCH_PRELOAD_DEADLINE (240s: the large preload stops there and the
# report says how many sessions it reached), CADDY (bin/caddy).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CADDY=${CADDY:-$ROOT/bin/caddy}
DURATION=${BENCH_DURATION:-5s}
ROUNDS=${BENCH_ROUNDS:-5}
CONNS=${BENCH_CONNS:-32}
THREADS=${BENCH_THREADS:-2}
SMALL=${BENCH_SESSIONS_SMALL:-1000}
LARGE=${BENCH_SESSIONS_LARGE:-1000000}
PRELOAD_CONNS=${BENCH_PRELOAD_CONNS:-32}
PRELOAD_DEADLINE=${BENCH_PRELOAD_DEADLINE:-240s}
HIT=$((SMALL / 2)) # the session wrk presents: live in both processes

START=$(date +%s)
log() { printf '[bench %3ds] %s\n' $(($(date +%s) - START)) "$*" >&2; }

if ! command -v wrk >/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing wrk (Debian package)"
		apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
	else
		echo "wrk is missing: apt-get install -y wrk" >&2
		exit 1
	fi
fi
[ -x "$CADDY" ] || { echo "no $CADDY: run make build" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/authsession-bench.XXXXXX")
PIDS=()
cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ "$rc" = 0 ]; then
		rm -rf "$WORK"
	else
		echo "bench failed (exit $rc); logs kept in $WORK" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building the helper (bench/cmd/benchtool)"
(cd "$ROOT" && go build -o "$WORK/benchtool" ./bench/cmd/benchtool)
BT=$WORK/benchtool

mapfile -t PORTS < <("$BT" freeports 15)
P_UP=${PORTS[0]} P_AUTH=${PORTS[1]}
P_PROXY=${PORTS[2]} P_RESPOND=${PORTS[3]} P_GATE_PROXY=${PORTS[4]} P_GATE_RESPOND=${PORTS[5]}
P_API=${PORTS[6]} P_FWD_PROXY=${PORTS[7]} P_FWD_RESPOND=${PORTS[8]}
P_BASIC_PROXY=${PORTS[9]} P_BASIC_RESPOND=${PORTS[10]}
P_L_PROXY=${PORTS[11]} P_L_GATE_PROXY=${PORTS[12]} P_L_GATE_RESPOND=${PORTS[13]} P_L_API=${PORTS[14]}

# Credentials of this run only. The API user is the demo admin /
# admin-password (bcrypt cost 10, as in Caddyfile.example); basic_auth gets a
# hash made by `caddy hash-password` with Caddy's defaults (bcrypt, cost 14).
API_HASH='$2a$10$6uE4D.zKrxsSS.zw5Iz3ve2C.PtdBc0jTfg0xPIDlOr7BCaSGr5WW'
BASIC_HASH=$("$CADDY" hash-password --plaintext bench-password)
BASIC_HEADER="Authorization: Basic $(printf 'bench:bench-password' | base64)"
SEAL_KEY=$(head -c 32 /dev/urandom | base64)
COOKIE_HEADER="Cookie: authsession=$("$BT" sessionid "$HIT")"

global_options() { # $1: log file
	cat <<EOF
{
	admin off
	auto_https off
	log default {
		output file $1
		level WARN
	}
	authsession {
		store memory
		cookie {
			name authsession
			insecure
		}
		api_user admin $API_HASH
		seal_key $SEAL_KEY
	}
}
EOF
}
site() { # $1: port, rest: directives
	local port=$1
	shift
	printf 'http://:%s {\n\tbind 127.0.0.1\n' "$port"
	printf '\t%s\n' "$@"
	printf '}\n'
}
GATE='authsession gate {
		upstream_header X-Auth-User login
	}'
PROXY="reverse_proxy 127.0.0.1:$P_UP"
RESPOND='respond "ok" 200'
FWD="forward_auth 127.0.0.1:$P_AUTH {
		uri /check
		copy_headers X-Auth-User
	}"
BASIC="basic_auth {
		bench $BASIC_HASH
	}"

{
	global_options "$WORK/caddy-small.log"
	site "$P_PROXY" "$PROXY"
	site "$P_RESPOND" "$RESPOND"
	site "$P_GATE_PROXY" "$GATE" "$PROXY"
	site "$P_GATE_RESPOND" "$GATE" "$RESPOND"
	site "$P_API" "authsession api"
	site "$P_FWD_PROXY" "$FWD" "$PROXY"
	site "$P_FWD_RESPOND" "$FWD" "$RESPOND"
	site "$P_BASIC_PROXY" "$BASIC" "$PROXY"
	site "$P_BASIC_RESPOND" "$BASIC" "$RESPOND"
} >"$WORK/small.caddyfile"
{
	global_options "$WORK/caddy-large.log"
	site "$P_L_PROXY" "$PROXY"
	site "$P_L_GATE_PROXY" "$GATE" "$PROXY"
	site "$P_L_GATE_RESPOND" "$GATE" "$RESPOND"
	site "$P_L_API" "authsession api"
} >"$WORK/large.caddyfile"

start() { # $1: name, rest: command
	local name=$1
	shift
	"$@" >"$WORK/$name.out" 2>&1 &
	PIDS+=($!)
	eval "PID_${name//-/_}=$!"
}
export XDG_DATA_HOME=$WORK/data XDG_CONFIG_HOME=$WORK/config
start upstream "$BT" upstream -addr "127.0.0.1:$P_UP"
start authsvc "$BT" authsvc -addr "127.0.0.1:$P_AUTH" -n "$LARGE"
start caddy-small "$CADDY" run --config "$WORK/small.caddyfile" --adapter caddyfile
start caddy-large "$CADDY" run --config "$WORK/large.caddyfile" --adapter caddyfile

status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" || true; }
wait_up() { # $1: url, $2: name
	for _ in $(seq 300); do
		[ "$(status_of "$1")" != 000 ] && return 0
		sleep 0.1
	done
	echo "$2 did not come up at $1; see $WORK/$2.out" >&2
	exit 1
}
wait_up "http://127.0.0.1:$P_UP/" upstream
wait_up "http://127.0.0.1:$P_RESPOND/" caddy-small
wait_up "http://127.0.0.1:$P_L_PROXY/" caddy-large
wait_up "http://127.0.0.1:$P_AUTH/check" authsvc
rss() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
RSS_SMALL_0=$(rss "$PID_caddy_small")
RSS_LARGE_0=$(rss "$PID_caddy_large")

log "preloading $SMALL sessions into the small process"
PRE_SMALL=$("$BT" preload -url "http://127.0.0.1:$P_API" -n "$SMALL" -c "$PRELOAD_CONNS")
log "$PRE_SMALL"
log "preloading $LARGE sessions into the large process (deadline $PRELOAD_DEADLINE)"
PRE_LARGE=$("$BT" preload -url "http://127.0.0.1:$P_L_API" -n "$LARGE" -c "$PRELOAD_CONNS" -deadline "$PRELOAD_DEADLINE")
log "$PRE_LARGE"
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }
LARGE_DONE=$(field created "$PRE_LARGE")
[ "$LARGE_DONE" -gt "$HIT" ] || { echo "large preload created only $LARGE_DONE sessions" >&2; exit 1; }
RSS_SMALL_1=$(rss "$PID_caddy_small")
RSS_LARGE_1=$(rss "$PID_caddy_large")
human() { if [ "$1" -ge 1000000 ] && [ $(($1 % 1000000)) = 0 ]; then echo "$(($1 / 1000000))M"; elif [ "$1" -ge 1000 ] && [ $(($1 % 1000)) = 0 ]; then echo "$(($1 / 1000))k"; else echo "$1"; fi; }
NS=$(human "$SMALL")
NL=$(human "$LARGE_DONE")

# id | label | own baseline | expected status | url | header ("" for none)
CONFIGS=(
	"proxy|\`reverse_proxy\` (baseline)|proxy|200|http://127.0.0.1:$P_PROXY/|"
	"respond|\`respond\` (ceiling)|respond|200|http://127.0.0.1:$P_RESPOND/|"
	"gate_small_proxy|gate hit, $NS sessions + \`reverse_proxy\`|proxy|200|http://127.0.0.1:$P_GATE_PROXY/|$COOKIE_HEADER"
	"gate_small_respond|gate hit, $NS sessions + \`respond\`|respond|200|http://127.0.0.1:$P_GATE_RESPOND/|$COOKIE_HEADER"
	"gate_large_proxy|gate hit, $NL sessions + \`reverse_proxy\`|proxy|200|http://127.0.0.1:$P_L_GATE_PROXY/|$COOKIE_HEADER"
	"gate_large_respond|gate hit, $NL sessions + \`respond\`|respond|200|http://127.0.0.1:$P_L_GATE_RESPOND/|$COOKIE_HEADER"
	"proxy_large|\`reverse_proxy\` in the $NL-session process (control)|proxy|200|http://127.0.0.1:$P_L_PROXY/|"
	"gate_miss|gate miss (no cookie → 401)|none|401|http://127.0.0.1:$P_GATE_RESPOND/|"
	"fwd_proxy|\`forward_auth\` + \`reverse_proxy\`|proxy|200|http://127.0.0.1:$P_FWD_PROXY/|$COOKIE_HEADER"
	"fwd_respond|\`forward_auth\` + \`respond\`|respond|200|http://127.0.0.1:$P_FWD_RESPOND/|$COOKIE_HEADER"
	"basic_proxy|\`basic_auth\` (bcrypt cost 14, cached) + \`reverse_proxy\`|proxy|200|http://127.0.0.1:$P_BASIC_PROXY/|$BASIC_HEADER"
	"basic_respond|\`basic_auth\` (bcrypt cost 14, cached) + \`respond\`|respond|200|http://127.0.0.1:$P_BASIC_RESPOND/|$BASIC_HEADER"
)

# Check every configuration answers as expected before measuring: the right
# status, and through the proxy the user passed on by the gate.
: >"$WORK/configs.tsv"
for c in "${CONFIGS[@]}"; do
	IFS='|' read -r id label terminal expect url header <<<"$c"
	printf '%s\t%s\t%s\t%s\n' "$id" "$label" "$terminal" "$expect" >>"$WORK/configs.tsv"
	args=(-s -D - -o /dev/null --max-time 20 "$url")
	[ -n "$header" ] && args+=(-H "$header")
	head=$(curl "${args[@]}" | tr -d '\r')
	got=$(awk 'NR==1 {print $2}' <<<"$head")
	if [ "$got" != "$expect" ]; then
		echo "check failed: $id answered $got, want $expect" >&2
		exit 1
	fi
	case $id in gate_*_proxy | fwd_proxy)
		grep -qi "^X-Seen-User: user$HIT\$" <<<"$head" || { echo "check failed: $id did not pass X-Auth-User upstream" >&2; exit 1; }
	esac
done
log "all ${#CONFIGS[@]} configurations answer as expected"

measure() { # $1: output file, $2: duration, $3: url, $4: header
	local args=(-t"$THREADS" -c"$CONNS" -d"$2" --latency)
	[ -n "$4" ] && args+=(-H "$4")
	wrk "${args[@]}" "$3" >"$1"
}
log "warm-up: 1s per configuration"
for c in "${CONFIGS[@]}"; do
	IFS='|' read -r id label terminal expect url header <<<"$c"
	measure /dev/null 1s "$url" "$header"
done
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$ROUNDS"); do
	mkdir -p "$WORK/wrk/$r"
	log "round $r of $ROUNDS (${#CONFIGS[@]} × $DURATION)"
	for c in "${CONFIGS[@]}"; do
		IFS='|' read -r id label terminal expect url header <<<"$c"
		measure "$WORK/wrk/$r/$id.txt" "$DURATION" "$url" "$header"
	done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
RSS_SMALL_2=$(rss "$PID_caddy_small")
RSS_LARGE_2=$(rss "$PID_caddy_large")

mkdir -p "$ROOT/bench/results"
OUT=$ROOT/bench/results/$(date -u +%Y-%m-%dT%H%MZ).md
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(cd "$ROOT" && git status --porcelain --untracked-files=no -- state handlers caddymodule go.mod 2>/dev/null)" ]; then COMMIT="$COMMIT (plus uncommitted changes)"; fi
per_session=$(((RSS_LARGE_1 - RSS_LARGE_0 - (RSS_SMALL_1 - RSS_SMALL_0)) * 1048576 / (LARGE_DONE - SMALL)))
{
	echo "# Benchmark run $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- Machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -sr)"
	echo "- Load average (1/5/15 min) before the rounds: $LOAD_START; after: $LOAD_END. wrk, Caddy, the upstream and the auth service share these CPUs (and so do other jobs if the load is above ~2): compare rows of one run, not absolute numbers across runs."
	echo "- Versions: $(go version | cut -d' ' -f3-), Caddy $("$CADDY" version | cut -d' ' -f1) with caddy-authsession $COMMIT, wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}')"
	echo "- wrk -t$THREADS -c$CONNS -d$DURATION --latency on 127.0.0.1, $ROUNDS rounds interleaved (every configuration once per round, in the order below), after a 1 s warm-up of each"
	echo "- Sessions: the small Caddy process holds $SMALL, the large one $LARGE_DONE (target $LARGE), all authenticated, one per user, preloaded through the OAM create API over $PRELOAD_CONNS connections: small \`$PRE_SMALL\`, large \`$PRE_LARGE\`"
	echo "- Caddy RSS (MiB) at start / after preload / after the rounds: small $RSS_SMALL_0 / $RSS_SMALL_1 / $RSS_SMALL_2, large $RSS_LARGE_0 / $RSS_LARGE_1 / $RSS_LARGE_2; growth per extra session after preload ≈ $per_session bytes (RSS, so including GC headroom)"
	echo "- Upstream: a Go net/http server answering \"ok\" (bench/cmd/benchtool upstream); forward_auth service: Go net/http looking the cookie up in a map of the same $LARGE sessions (benchtool authsvc)"
	echo
	"$BT" report -dir "$WORK"
	echo
	echo "Total run time: $(($(date +%s) - START)) s. Reproduce: \`make bench\` (see the README, "Performance")."
} >"$OUT"
log "wrote $OUT"
cat "$OUT"
