#!/usr/bin/env bash
# bench/run.sh — the load benchmark behind `make bench` (docs/performance.md).
#
# Measures what users pay, with Caddy built from this repository (bin/caddy)
# pinned to one CPU (taskset -c BENCH_CADDY_CPU) and wrk pinned to another
# (BENCH_LOAD_CPU), everything on 127.0.0.1, and writes
# bench/results/<date>.md:
#
#  (a) one Caddy process serving `respond`, a no-op handler (`vars`) +
#      `respond`, gate + `respond`, `basic_auth` + `respond`, `forward_auth`
#      + `respond` and the gate's miss path, each on its own site address;
#  (b) the same configuration in two processes, one holding 1 session and
#      one holding BENCH_SESSIONS, created through the OAM API; the process
#      not being measured is stopped with SIGSTOP (SIGCONT after), so the two
#      never compete. (a) and (b) run interleaved, round by round; the report
#      gives the medians;
#  (c) RSS per live session: VmRSS of the two processes of (b), subtracted;
#  (d) the gate's p50/p99 in a third process whose sessions expire while it
#      is measured (cleanup_interval 1s), against the large process of (b);
#  (e) the file store's restart time with BENCH_SESSIONS sessions: stop,
#      start, time until the gate answers and until every session is loaded.
#
# Tunables (environment): BENCH_SESSIONS (1000000; e.g. 100000 for a
# shorter run), BENCH_PARTS (abcde: the parts to run; c comes with b, d needs b),
# BENCH_DURATION (3s per wrk run), BENCH_ROUNDS (9), BENCH_CONNS (32),
# BENCH_PRELOAD_CONNS (32; BENCH_FILE_PRELOAD_CONNS, 256, for the file
# store, whose commits are shared by concurrent writers), BENCH_PRELOAD_DEADLINE (600s: a preload stops
# there and the report says how many sessions it reached),
# BENCH_SWEEP_SPAN (60: seconds over which part (d)'s sessions are created,
# and so expire; at least 1.3 × the time the preload of (b) took), BENCH_RESTARTS (3), BENCH_SEED_DIR (/dev/shm: where part
# (e) creates its file before copying it to disk), BENCH_CADDY_CPU (0), BENCH_LOAD_CPU (1),
# BENCH_RESUME_WARMUP (2s: unrecorded load given to a process continued
# after SIGSTOP before it is measured, in (b) and (d)), BENCH_PROFILE (1: also take a 10 s CPU profile of the gate + respond site
# of both processes of (b), through an admin endpoint on a loopback port,
# and put `go tool pprof -top` in the report), CADDY (bin/caddy).
#
# It is never part of `make test`: it takes ~15 minutes at 1M sessions and
# needs ~8 GB of RAM.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CADDY=${CADDY:-$ROOT/bin/caddy}
N=${BENCH_SESSIONS:-1000000}
PARTS=${BENCH_PARTS:-abcde}
DURATION=${BENCH_DURATION:-3s}
ROUNDS=${BENCH_ROUNDS:-9}
CONNS=${BENCH_CONNS:-32}
PRELOAD_CONNS=${BENCH_PRELOAD_CONNS:-32}
FILE_PRELOAD_CONNS=${BENCH_FILE_PRELOAD_CONNS:-256}
PRELOAD_DEADLINE=${BENCH_PRELOAD_DEADLINE:-600s}
SWEEP_SPAN=${BENCH_SWEEP_SPAN:-60}
RESTARTS=${BENCH_RESTARTS:-3}
SEED_DIR=${BENCH_SEED_DIR:-/dev/shm}
CADDY_CPU=${BENCH_CADDY_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
PROFILE=${BENCH_PROFILE:-0}
RESUME_WARMUP=${BENCH_RESUME_WARMUP:-2s}
HIT=0 # wrk's session: the first one, live in every process

START=$(date +%s)
log() { printf '[bench %4ds] %s\n' $(($(date +%s) - START)) "$*" >&2; }
part() { [[ $PARTS == *"$1"* ]]; }

if ! command -v wrk >/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing wrk (Debian package)"
		apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
	else
		echo "wrk is missing: apt-get install -y wrk" >&2
		exit 1
	fi
fi
command -v taskset >/dev/null || { echo "taskset is missing (util-linux)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs: Caddy on one, wrk on another" >&2; exit 1; }
[ -x "$CADDY" ] || { echo "no $CADDY: run make build" >&2; exit 1; }
[ "$N" -ge 2 ] || { echo "BENCH_SESSIONS must be at least 2" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/authsession-bench.XXXXXX")
PIDS=()
cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	[ -z "${SEED:-}" ] || [ "$SEED" = "$WORK/file" ] || rm -rf "$SEED"
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
fact() { printf '%s\t%s\n' "$1" "$2" >>"$WORK/facts.tsv"; }
: >"$WORK/facts.tsv"
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

mapfile -t PORTS < <("$BT" freeports 19)
P_AUTH=${PORTS[0]}
declare -A PORT
i=1
for proc in small large; do
	for site in respond noop gate basic fwd api admin; do
		PORT[$proc.$site]=${PORTS[i]}
		i=$((i + 1))
	done
done
for proc in sweep file; do
	for site in gate api; do
		PORT[$proc.$site]=${PORTS[i]}
		i=$((i + 1))
	done
done

# Credentials of this run only. The API user is the demo admin /
# admin-password (bcrypt cost 10, as in Caddyfile.example); basic_auth gets a
# hash made by `caddy hash-password` with Caddy's defaults (bcrypt, cost 14).
API_HASH='$2a$10$6uE4D.zKrxsSS.zw5Iz3ve2C.PtdBc0jTfg0xPIDlOr7BCaSGr5WW'
BASIC_HASH=$("$CADDY" hash-password --plaintext bench-password)
BASIC_HEADER="Authorization: Basic $(printf 'bench:bench-password' | base64)"
SEAL_KEY=$(head -c 32 /dev/urandom | base64)
COOKIE_HEADER="Cookie: authsession=$("$BT" sessionid "$HIT")"
SWEEP_IDLE=$((SWEEP_SPAN + 20))

# caddyfile NAME STORE [OPTION...]: the Caddyfile of process NAME, with the
# sites it has ports for. Every process gets the same configuration but
# for the store and the options given.
caddyfile() {
	local name=$1 store=$2 admin="admin off"
	shift 2
	[ "$PROFILE" = 1 ] && [ -n "${PORT[$name.admin]:-}" ] && admin="admin 127.0.0.1:${PORT[$name.admin]}"
	cat <<EOF
{
	$admin
	auto_https off
	log default {
		output file $WORK/caddy-$name.log
		level WARN
	}
	authsession {
		store $store
EOF
	for o in "$@"; do printf '\t\t%s\n' "$o"; done
	cat <<EOF
		cookie {
			name authsession
			insecure
		}
		api_user admin $API_HASH
		seal_key $SEAL_KEY
	}
}
EOF
	site() { # site KIND DIRECTIVE...
		local p=${PORT[$name.$1]:-}
		shift
		[ -n "$p" ] || return 0
		printf 'http://:%s {\n\tbind 127.0.0.1\n' "$p"
		printf '\t%s\n' "$@"
		printf '}\n'
	}
	local respond='respond "ok" 200'
	site respond "$respond"
	# A handler that does next to nothing (one variable in the request's
	# context) before the same respond: what Caddy charges for a second
	# handler in a route, whatever it does, to read the gate's row against.
	site noop 'vars authsession_bench 1' "$respond"
	site gate 'authsession gate {
		upstream_header X-Auth-User login
	}' "$respond"
	site basic "basic_auth {
		bench $BASIC_HASH
	}" "$respond"
	site fwd "forward_auth 127.0.0.1:$P_AUTH {
		uri /check
		copy_headers X-Auth-User
	}" "$respond"
	site api "authsession api"
}

# start NAME CPU COMMAND...: run COMMAND in the background (pinned to CPU
# unless it is "-"), remember its pid as PID_NAME.
start() {
	local name=$1 cpu=$2
	shift 2
	if [ "$cpu" = - ]; then
		"$@" >>"$WORK/$name.out" 2>&1 &
	else
		taskset -c "$cpu" "$@" >>"$WORK/$name.out" 2>&1 &
	fi
	PIDS+=($!)
	printf -v "PID_$name" %s $!
}
forget() { # forget PID: it has exited
	local keep=() p
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}
stop_proc() { # stop_proc PID: SIGTERM, wait until gone
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	forget "$1"
}
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time "${2:-5}" "${@:3}" "$1" || true; }
wait_up() { # wait_up URL NAME
	for _ in $(seq 600); do
		[ "$(status_of "$1")" != 000 ] && return 0
		sleep 0.1
	done
	echo "$2 did not come up at $1; see $WORK/$2.out" >&2
	exit 1
}
url() { echo "http://127.0.0.1:${PORT[$1.$2]}/"; }
api() { echo "http://127.0.0.1:${PORT[$1.api]}"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# preload PROC N [FLAGS...]: sessions 0..N-1 through PROC's OAM API. The
# process may use every CPU meanwhile (all its threads), then goes back to
# its own; nothing is measured during a preload.
preload() {
	local proc=$1 n=$2 pid=PID_$1 rc=0
	shift 2
	taskset -a -p -c "0-$(($(nproc) - 1))" "${!pid}" >/dev/null
	"$BT" preload -url "$(api "$proc")" -n "$n" -c "$PRELOAD_CONNS" -deadline "$PRELOAD_DEADLINE" "$@" || rc=$?
	[ "$proc" = file ] || taskset -a -p -c "$CADDY_CPU" "${!pid}" >/dev/null
	return $rc
}
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }
expect() { # expect NAME URL STATUS [HEADER]
	local got
	if [ -n "${4:-}" ]; then got=$(status_of "$2" 20 -H "$4"); else got=$(status_of "$2" 20); fi
	[ "$got" = "$3" ] || { echo "check failed: $1 answered $got, want $3" >&2; exit 1; }
}
TICK=$(getconf CLK_TCK)
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# measure OUT URL HEADER [PID]: one wrk run on the load CPU; with PID, the
# CPU time that process used meanwhile (user + system, seconds) in OUT.cpu.
measure() {
	local args=(-t1 -c"$CONNS" -d"${DURATION_NOW:-$DURATION}" --latency) c0
	[ -n "${3:-}" ] && args+=(-H "$3")
	[ -z "${4:-}" ] || c0=$(cputicks "$4")
	taskset -c "$LOAD_CPU" wrk "${args[@]}" "$2" >"$1"
	[ -z "${4:-}" ] || awk -v a="$c0" -v b="$(cputicks "$4")" -v t="$TICK" 'BEGIN {printf "%.3f\n", (b - a) / t}' >"$1.cpu"
}
# alone PID...: SIGSTOP these processes until `together`.
STOPPED=()
alone() { STOPPED=("$@"); kill -STOP "$@"; }
together() { [ ${#STOPPED[@]} = 0 ] || kill -CONT "${STOPPED[@]}"; STOPPED=(); }

fact sessions_small 1
fact sessions_large "$N"

# ---- (a), (b), (c) ---------------------------------------------------------
if part a || part b; then
	caddyfile small memory >"$WORK/small.caddyfile"
	caddyfile large memory >"$WORK/large.caddyfile"
	start authsvc "$LOAD_CPU" "$BT" authsvc -addr "127.0.0.1:$P_AUTH" -n 1
	start small "$CADDY_CPU" "$CADDY" run --config "$WORK/small.caddyfile" --adapter caddyfile
	wait_up "$(url small respond)" small
	wait_up "http://127.0.0.1:$P_AUTH/check" authsvc
	if part b; then
		start large "$CADDY_CPU" "$CADDY" run --config "$WORK/large.caddyfile" --adapter caddyfile
		wait_up "$(url large respond)" large
		fact rss_large_start "$(rss "$PID_large")"
	fi
	fact rss_small_start "$(rss "$PID_small")"

	log "preloading 1 session into the small process"
	fact preload_small "small: $(preload small 1)"
	if part b; then
		log "preloading $N sessions into the large process (deadline $PRELOAD_DEADLINE)"
		pre=$(preload large "$N")
		log "$pre"
		fact preload_large "large: $pre"
		done_n=$(field created "$pre")
		[ "$done_n" -ge 2 ] || { echo "large preload created only $done_n sessions" >&2; exit 1; }
		fact sessions_large "$done_n"
		fact rss_large_preloaded "$(rss "$PID_large")"
	fi
	fact rss_small_preloaded "$(rss "$PID_small")"

	# id | process | site | expected status | header
	# `respond` gets the same request as the gate (the session cookie), so
	# that the two differ only in their configuration: a cookie costs Caddy
	# its parsing whether a gate reads it or not.
	CONFIGS=()
	if part a; then
		CONFIGS+=(
			"a_respond|small|respond|200|$COOKIE_HEADER"
			"a_noop|small|noop|200|$COOKIE_HEADER"
			"a_gate|small|gate|200|$COOKIE_HEADER"
			"a_basic|small|basic|200|$BASIC_HEADER"
			"a_fwd|small|fwd|200|$COOKIE_HEADER"
			"a_miss|small|gate|401|"
		)
	fi
	if part b; then
		# Each pair side by side: a round's ratio compares runs seconds apart.
		CONFIGS+=(
			"b_small_respond|small|respond|200|$COOKIE_HEADER"
			"b_large_respond|large|respond|200|$COOKIE_HEADER"
			"b_large_gate|large|gate|200|$COOKIE_HEADER"
			"b_small_gate|small|gate|200|$COOKIE_HEADER"
		)
	fi
	for c in "${CONFIGS[@]}"; do
		IFS='|' read -r id proc site want header <<<"$c"
		expect "$id" "$(url "$proc" "$site")" "$want" "$header"
	done
	log "all ${#CONFIGS[@]} configurations answer as expected"

	# run_configs DIR [reverse]: every configuration once (in reverse
	# order with "reverse"), the other process stopped.
	# A process resumed (SIGCONT) after waiting stopped first runs what fell
	# due meanwhile (its timers: the store sweep, the ops sample, the
	# runtime's forced collection), all at once: a process that runs on its
	# own never piles these up, so it gets RESUME_WARMUP of unrecorded load
	# before it is measured.
	run_configs() {
		local dir=$1 c id proc site want header other pid prev= order=("${CONFIGS[@]}") i
		mkdir -p "$dir"
		if [ "${2:-}" = reverse ]; then
			order=()
			for ((i = ${#CONFIGS[@]} - 1; i >= 0; i--)); do order+=("${CONFIGS[i]}"); done
		fi
		for c in "${order[@]}"; do
			IFS='|' read -r id proc site want header <<<"$c"
			other=
			if part b; then
				if [ "$proc" = small ]; then other=$PID_large; else other="$PID_small $PID_authsvc"; fi
			fi
			# shellcheck disable=SC2086
			[ -z "$other" ] || alone $other
			pid=PID_$proc
			if part b && [ "$proc" != "$prev" ] && [ -z "${NO_RESUME_WARMUP:-}" ]; then
				DURATION_NOW=$RESUME_WARMUP measure "$dir/.resume-$id" "$(url "$proc" "$site")" "$header"
			fi
			prev=$proc
			measure "$dir/$id.txt" "$(url "$proc" "$site")" "$header" "${!pid}"
			together
		done
	}
	log "warm-up: 1 s per configuration"
	NO_RESUME_WARMUP=1 DURATION_NOW=1s run_configs "$WORK/warmup"
	fact load_ab_before "$(loadavg)"
	# Odd rounds run the configurations in order, even rounds in reverse:
	# a configuration's neighbours and its place in the round change, so
	# that a drift of the machine over a round (a neighbour's job starting,
	# the heap growing) favours none of them.
	for r in $(seq "$ROUNDS"); do
		log "round $r of $ROUNDS (${#CONFIGS[@]} × $DURATION)"
		if ((r % 2 == 0)); then run_configs "$WORK/wrk/$r" reverse; else run_configs "$WORK/wrk/$r"; fi
	done
	fact load_ab "$(loadavg) after, $(sed -n 's/^load_ab_before\t//p' "$WORK/facts.tsv") before"
	fact rss_small_after "$(rss "$PID_small")"
	part b && fact rss_large_after "$(rss "$PID_large")"

	if [ "$PROFILE" = 1 ] && part b; then
		for proc in small large; do
			other=$PID_large
			[ "$proc" = large ] && other="$PID_small $PID_authsvc"
			log "CPU profile of gate + respond in the $proc process (10 s)"
			# shellcheck disable=SC2086
			alone $other
			DURATION_NOW=12s measure "$WORK/profile-$proc.wrk" "$(url "$proc" gate)" "$COOKIE_HEADER" &
			wrkpid=$!
			sleep 1
			curl -s --max-time 30 -o "$WORK/profile-$proc.pprof" "http://127.0.0.1:${PORT[$proc.admin]}/debug/pprof/profile?seconds=10"
			wait "$wrkpid"
			together
			go tool pprof -top -nodecount=35 "$CADDY" "$WORK/profile-$proc.pprof" >"$WORK/profile-$proc.txt" 2>/dev/null || true
			# The gate's own share: its ServeHTTP and what it calls, the next
			# handler (respond) apart.
			go tool pprof -peek 'caddymodule.\(\*Gate\).ServeHTTP$' "$CADDY" "$WORK/profile-$proc.pprof" 2>/dev/null |
				sed -n '/^-----/,$p' >"$WORK/profile-$proc.gate.txt" || true
		done
	fi
fi

# ---- (d) --------------------------------------------------------------------
if part d; then
	if ! part b; then
		echo "part d compares with the large process of part b: BENCH_PARTS must include b" >&2
		exit 1
	fi
	# Pace the creations over at least as long as the preload of (b) took
	# (×1.3), so that none expires before the last is made and the rounds
	# begin with all of them.
	took=$(sed -n 's/.*preload_large\t.*seconds=\([0-9.]*\).*/\1/p' "$WORK/facts.tsv")
	SWEEP_SPAN=$(awk -v s="$SWEEP_SPAN" -v t="${took:-0}" -v n="$N" -v l="$(sed -n 's/^sessions_large\t//p' "$WORK/facts.tsv" | tail -1)" 'BEGIN {x = t * 1.3 * n / l; printf "%d", (x > s ? x : s)}')
	SWEEP_IDLE=$((SWEEP_SPAN + 20))
	caddyfile sweep "memory {
			cleanup_interval 1s
		}" "idle_timeout ${SWEEP_IDLE}s" "touch_interval 1s" >"$WORK/sweep.caddyfile"
	start sweep "$CADDY_CPU" "$CADDY" run --config "$WORK/sweep.caddyfile" --adapter caddyfile
	wait_up "$(url sweep gate)" sweep
	# Keep wrk's session live while the others are created (the gate
	# touches it at most once a second).
	(while :; do status_of "$(url sweep gate)" 2 -H "$COOKIE_HEADER" >/dev/null; sleep 1; done) &
	toucher=$!
	PIDS+=("$toucher")
	log "preloading $N sessions into the sweep process, over at least ${SWEEP_SPAN}s (idle_timeout ${SWEEP_IDLE}s)"
	t0=$(date +%s.%N)
	pre=$(preload sweep "$N" -span "${SWEEP_SPAN}s")
	t1=$(date +%s.%N)
	log "$pre"
	swept_n=$(field created "$pre")
	fact preload_sweep "$pre"
	fact sweep_sessions "$swept_n"
	fact sweep_span "$SWEEP_SPAN"
	fact sweep_idle "${SWEEP_IDLE}s"
	fact sweep_per_second "$(awk -v n="$swept_n" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')"
	# The sessions expire from t0+idle to t1+idle: measure in that window.
	from=$(awk -v a="$t0" -v i="$SWEEP_IDLE" 'BEGIN {printf "%.0f", a + i + 1}')
	until=$(awk -v b="$t1" -v i="$SWEEP_IDLE" 'BEGIN {printf "%.0f", b + i}')
	while [ "$(date +%s)" -lt "$from" ]; do sleep 0.5; done
	expect d_sweep "$(url sweep gate)" 200 "$COOKIE_HEADER"
	kill "$toucher" 2>/dev/null || true
	wait "$toucher" 2>/dev/null || true
	forget "$toucher"
	secs=${DURATION%s}
	fact load_d_before "$(loadavg)"
	for r in $(seq "$ROUNDS"); do
		if [ $(($(date +%s) + 2 * (secs + ${RESUME_WARMUP%s}) + 2)) -gt "$until" ]; then
			log "the expiry window closes: $((r - 1)) rounds"
			break
		fi
		log "sweep round $r of $ROUNDS"
		mkdir -p "$WORK/sweep/$r"
		alone "$PID_large" "$PID_small" "$PID_authsvc"
		DURATION_NOW=$RESUME_WARMUP measure "$WORK/sweep/$r/.resume" "$(url sweep gate)" "$COOKIE_HEADER"
		measure "$WORK/sweep/$r/d_sweep.txt" "$(url sweep gate)" "$COOKIE_HEADER" "$PID_sweep"
		together
		alone "$PID_sweep" "$PID_small" "$PID_authsvc"
		DURATION_NOW=$RESUME_WARMUP measure "$WORK/sweep/$r/.resume" "$(url large gate)" "$COOKIE_HEADER"
		measure "$WORK/sweep/$r/d_nosweep.txt" "$(url large gate)" "$COOKIE_HEADER" "$PID_large"
		together
	done
	fact load_d "$(loadavg) after, $(sed -n 's/^load_d_before\t//p' "$WORK/facts.tsv") before"
	stop_proc "$PID_sweep"
fi
for p in small large authsvc; do
	v=PID_$p
	[ -z "${!v:-}" ] || stop_proc "${!v}"
done

# ---- (e) --------------------------------------------------------------------
if part e; then
	# The sessions are created through the API into a file on tmpfs (where
	# fsync is free: on this disk each commit's fsync would make 1M
	# creations take ~10 minutes), then the file is copied to disk, and
	# the restarts read it there.
	mkdir -p "$WORK/file"
	SEED=$WORK/file
	if [ -d "$SEED_DIR" ] && [ -w "$SEED_DIR" ]; then SEED=$(mktemp -d "$SEED_DIR/authsession-bench-seed.XXXXXX"); fi
	caddyfile file "file $SEED/sessions.db" >"$WORK/seed.caddyfile"
	caddyfile file "file $WORK/file/sessions.db" >"$WORK/file.caddyfile"
	start file - "$CADDY" run --config "$WORK/seed.caddyfile" --adapter caddyfile
	wait_up "$(url file gate)" file
	log "preloading $N sessions into the file-store process (file in $SEED)"
	pre=$(PRELOAD_CONNS=$FILE_PRELOAD_CONNS preload file "$N")
	log "$pre"
	fact preload_file "$pre"
	fact file_sessions "$(field created "$pre")"
	last=$(($(field created "$pre") - 1))
	stop_proc "$PID_file"
	if [ "$SEED" != "$WORK/file" ]; then
		cp "$SEED/sessions.db" "$WORK/file/sessions.db"
		rm -rf "$SEED"
		sync
	fi
	fact file_size "$(du -h "$WORK/file/sessions.db" | cut -f1)"
	fact load_e_before "$(loadavg)"
	: >"$WORK/restart.tsv"
	for r in $(seq "$RESTARTS"); do
		t0=$(date +%s.%N)
		start file - "$CADDY" run --config "$WORK/file.caddyfile" --adapter caddyfile
		while [ "$(status_of "$(url file gate)" 5 -H "$COOKIE_HEADER")" != 200 ]; do sleep 0.05; done
		t1=$(date +%s.%N)
		while [ "$(status_of "$(api file)/oam/services/rest/access/api/v1/sessions?userId=user$last" 120 -X POST -u admin:admin-password)" != 200 ]; do sleep 0.05; done
		t2=$(date +%s.%N)
		s0=$(date +%s.%N)
		stop_proc "$PID_file"
		s1=$(date +%s.%N)
		awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$s0" -v e="$s1" 'BEGIN {printf "%.3f %.3f %.3f\n", e - d, b - a, c - a}' >>"$WORK/restart.tsv"
		log "restart $r: $(tail -1 "$WORK/restart.tsv") (stop, serving, loaded; s)"
	done
	fact load_e "$(loadavg) after, $(sed -n 's/^load_e_before\t//p' "$WORK/facts.tsv") before"
fi

# ---- report -----------------------------------------------------------------
mkdir -p "$ROOT/bench/results"
OUT=$ROOT/bench/results/$(date -u +%Y-%m-%dT%H%MZ).md
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(cd "$ROOT" && git status --porcelain --untracked-files=no -- state handlers caddymodule go.mod 2>/dev/null)" ]; then COMMIT="$COMMIT (plus uncommitted changes)"; fi
{
	echo "# Benchmark run $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- Machine: \`nproc\` $(nproc), $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -sr)"
	echo "- Load average (1/5/15 min) at the start: $(sed -n 's/^load_ab_before\t//p' "$WORK/facts.tsv"); each part gives its own. Other jobs share this machine when the load is above ~2: the figures are noisy, compare rows of one run."
	echo "- Versions: $(go version | cut -d' ' -f3-), Caddy $("$CADDY" version | cut -d' ' -f1) with caddy-authsession $COMMIT, wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}')"
	echo "- Caddy pinned to CPU $CADDY_CPU (\`taskset -c $CADDY_CPU\`; every CPU while sessions are preloaded, nothing being measured then), wrk to CPU $LOAD_CPU; \`wrk -t1 -c$CONNS -d$DURATION --latency\`, $ROUNDS rounds interleaved, medians; admin off and logs at WARN to a file$([ "$PROFILE" = 1 ] && echo ' (admin on a loopback port in (a)/(b) for the profiles)')"
	echo
	"$BT" report -dir "$WORK"
	for proc in small large; do
		[ -s "$WORK/profile-$proc.txt" ] || continue
		echo "## CPU profile: gate + \`respond\`, the process holding $(sed -n "s/^sessions_$proc\t//p" "$WORK/facts.tsv" | tail -1) session(s)"
		echo
		echo "\`go tool pprof -top\` of 10 s under wrk ($(awk '/^Requests\/sec/ {print $2}' "$WORK/profile-$proc.wrk") req/s):"
		echo
		echo '```'
		cat "$WORK/profile-$proc.txt"
		echo '```'
		echo
		if [ -s "$WORK/profile-$proc.gate.txt" ]; then
			echo "The gate's \`ServeHTTP\` and its callees (\`go tool pprof -peek\`; the next handler, \`respond\`, is the \`HandlerFunc.ServeHTTP\` line):"
			echo
			echo '```'
			cat "$WORK/profile-$proc.gate.txt"
			echo '```'
			echo
		fi
	done
	echo "Total run time: $(($(date +%s) - START)) s. Reproduce: \`make bench\` (BENCH_SESSIONS=$N BENCH_PARTS=$PARTS)."
} >"$OUT"
log "wrote $OUT"
cat "$OUT"
