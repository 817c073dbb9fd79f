#!/usr/bin/env bash
# bench/share.sh — the gate's own cost inside one Caddy process, two ways
# (docs/performance.md "The gate's share by sampling" and "Instructions per
# request").
#
# A throughput ratio (make bench) moves by several percent from one run to
# the next on a shared machine, more than the gate costs. This measures the
# cost inside one process instead: this repository's Caddy serves `respond`
# behind the gate, behind the gate with nothing to rewrite (gatemin: no
# upstream header, credentials passed on, so it does only what every gate
# must: read the cookie, hash the id, find the session, check it), behind a
# no-op handler (`vars`), and alone, loaded by wrk pinned to BENCH_LOAD_CPU,
# all on 127.0.0.1.
#
# bench/share.sh (`make bench-share`): by sampling. bin/caddy-sym (with its
# symbols) is pinned to BENCH_CADDY_CPU; for each of SHARE_ROUNDS interleaved
# rounds `perf record` samples Caddy (cpu-clock at SHARE_HZ, call graphs by
# frame pointers) for SHARE_SECONDS under each configuration, and
# `benchtool share` counts the samples in the handler's own work (its
# ServeHTTP, the next handler's call apart). The share times Caddy's CPU
# time per request (1 / req/s, the core being saturated) is the handler's
# cost per request. The shares of one round are samples of the same
# seconds of the machine, so its noise moves them together.
# SHARE_KEEP=dir keeps the perf recordings (and the binary) there, for
# `perf report` or `benchtool share -func` on a callee.
#
# bench/share.sh instr (`make bench-instr`): by counting instructions, which
# the machine's neighbours do not change. Caddy runs under valgrind's
# callgrind (GOGC=off, so that the collector's cycles, which fall where they
# may, do not blur the count; GODEBUG=asyncpreemptoff=1, without which
# callgrind stops on the preemption signal); for each of SHARE_ROUNDS rounds
# and each configuration its counters are zeroed, wrk sends requests for
# SHARE_SECONDS (8 connections: Caddy runs ~20 times slower under callgrind,
# so it never waits for wrk), and the instructions Caddy executed meanwhile
# are divided by the requests wrk completed. It counts basic_auth + respond
# too (wrk sends it credentials instead of the cookie). valgrind's CPU has
# no SHA-NI, so the id's SHA-256 runs as AVX2 code there; its block function's own
# count is shown apart, beside the ~180 instructions of the SHA-NI block
# that real machines run.
#
# Needs wrk, and perf (Debian: linux-perf; perf_event_paranoid ≤ 2 for a
# process of one's own) or valgrind. Never part of make test.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=${1:-sample}
CADDY=${CADDY_SYM:-$ROOT/bin/caddy-sym}
ROUNDS=${SHARE_ROUNDS:-3}
SECONDS_PER=${SHARE_SECONDS:-10}
[ "$MODE" != instr ] || SECONDS_PER=${SHARE_SECONDS:-3}
HZ=${SHARE_HZ:-4999}
CADDY_CPU=${BENCH_CADDY_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
CONNS=${BENCH_CONNS:-32}

case $MODE in
sample) TOOLS=(perf wrk taskset) ;;
instr) TOOLS=(valgrind callgrind_control callgrind_annotate wrk taskset) ;;
*) echo "usage: bench/share.sh [instr]" >&2; exit 2 ;;
esac
for tool in "${TOOLS[@]}"; do
	command -v "$tool" >/dev/null || { echo "bench/share.sh: $tool is missing" >&2; exit 1; }
done
[ -x "$CADDY" ] || { echo "no $CADDY: make bin/caddy-sym" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/authsession-share.XXXXXX")
PID=
cleanup() {
	[ -z "$PID" ] || kill "$PID" 2>/dev/null || true
	wait 2>/dev/null || true
	if [ -n "${SHARE_KEEP:-}" ]; then # keep the recordings and the binary they sample
		mkdir -p "$SHARE_KEEP" && cp "$WORK"/*.data "$CADDY" "$SHARE_KEEP"/ 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT" && go build -o "$WORK/benchtool" ./bench/cmd/benchtool)
BT=$WORK/benchtool
mapfile -t P < <("$BT" freeports 6)
declare -A PORT=([respond]=${P[0]} [noop]=${P[1]} [gate]=${P[2]} [api]=${P[3]} [gatemin]=${P[4]} [basic]=${P[5]})
# basic_auth checks the API user's bcrypt hash (cost 10) once, then hits
# Caddy's cache of verified credentials, as in make bench (whose hash costs 14).
API_HASH='$2a$10$6uE4D.zKrxsSS.zw5Iz3ve2C.PtdBc0jTfg0xPIDlOr7BCaSGr5WW'
BASIC_HEADER="Authorization: Basic $(printf 'bench:admin-password' | base64)"
cat >"$WORK/Caddyfile" <<EOF
{
	admin off
	auto_https off
	log default {
		output file $WORK/caddy.log
		level WARN
	}
	authsession {
		cookie {
			name authsession
			insecure
		}
		api_user admin $API_HASH
		seal_key $(head -c 32 /dev/urandom | base64)
	}
}
http://127.0.0.1:${PORT[respond]} {
	respond "ok" 200
}
http://127.0.0.1:${PORT[noop]} {
	vars authsession_bench 1
	respond "ok" 200
}
http://127.0.0.1:${PORT[gate]} {
	authsession gate {
		upstream_header X-Auth-User login
	}
	respond "ok" 200
}
http://127.0.0.1:${PORT[gatemin]} {
	authsession gate {
		pass_session_credentials
	}
	respond "ok" 200
}
http://127.0.0.1:${PORT[basic]} {
	basic_auth {
		bench $API_HASH
	}
	respond "ok" 200
}
http://127.0.0.1:${PORT[api]} {
	authsession api
}
EOF
RUN=(taskset -c "$CADDY_CPU")
if [ "$MODE" = instr ]; then
	export GOGC=off GODEBUG=asyncpreemptoff=1
	RUN+=(valgrind --tool=callgrind --compress-strings=no --compress-pos=no --callgrind-out-file="$WORK/cg.out")
fi
XDG_DATA_HOME=$WORK/data XDG_CONFIG_HOME=$WORK/config "${RUN[@]}" "$CADDY" run --config "$WORK/Caddyfile" --adapter caddyfile >"$WORK/caddy.out" 2>&1 &
PID=$!
for _ in $(seq 600); do
	curl -s -o /dev/null "http://127.0.0.1:${PORT[respond]}/" && break
	sleep 0.1
done
"$BT" preload -url "http://127.0.0.1:${PORT[api]}" -n 1 -c 1 -deadline 30s >/dev/null
COOKIE="Cookie: authsession=$("$BT" sessionid 0)"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$COOKIE" "http://127.0.0.1:${PORT[gate]}/")" = 200 ] ||
	{ echo "the gate refused the benchmark session" >&2; exit 1; }
# what wrk sends a site: the session cookie, or basic_auth's credentials
hdr() { if [ "$1" = basic ]; then echo "$BASIC_HEADER"; else echo "$COOKIE"; fi; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$BASIC_HEADER" "http://127.0.0.1:${PORT[basic]}/")" = 200 ] ||
	{ echo "basic_auth refused the benchmark credentials" >&2; exit 1; }
for site in respond noop gate gatemin basic; do
	taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d2s -H "$(hdr "$site")" "http://127.0.0.1:${PORT[$site]}/" >/dev/null
done

if [ "$MODE" = instr ]; then
	# wrk's completed requests, and Caddy's instructions meanwhile.
	count() { # count SITE ROUND: prints "requests instructions sha-block-instructions"
		callgrind_control -z "$PID" >/dev/null 2>&1
		local n f
		n=$(taskset -c "$LOAD_CPU" wrk -t1 -c8 -d"${SECONDS_PER}s" -H "$(hdr "$1")" "http://127.0.0.1:${PORT[$1]}/" |
			awk '/requests in/ {print $1}')
		callgrind_control -d "$PID" >/dev/null 2>&1
		f=$(ls -t "$WORK"/cg.out.* | head -1)
		mv "$f" "$WORK/$1-$2.cg"
		echo "$n $(awk '/^summary:/ {print $2}' "$WORK/$1-$2.cg") $(callgrind_annotate --auto=no --threshold=100 "$WORK/$1-$2.cg" |
			awk '/sha256\.block/ {gsub(",", "", $1); s += $1} END {print s + 0}')"
	}
	echo "| round | configuration | requests | instructions per request | of which the SHA-256 block | respond ÷ this | the same, with the SHA-NI block (~180) |"
	echo "| --: | --- | --: | --: | --: | --: | --: |"
	for r in $(seq "$ROUNDS"); do
		for site in respond noop gatemin gate basic; do
			read -r n ir sha < <(count "$site" "$r")
			per=$((ir / n))
			shaper=$((sha / n))
			if [ "$site" = respond ]; then # the round's baseline
				base=$per
				echo "| $r | respond | $n | $per | $shaper | — | — |"
				continue
			fi
			awk -v r="$r" -v s="$site" -v n="$n" -v p="$per" -v h="$shaper" -v b="$base" 'BEGIN {
				fixed = p - h + (h > 0 ? 180 : 0)
				printf "| %s | %s | %s | %d | %d | %.3f | %.3f |\n", r, s, n, p, h, b / p, b / fixed }'
		done
	done
	echo
	echo "Machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end (instruction counts do not depend on it)."
	exit 0
fi

declare -A FUNC=([gate]='caddymodule.(*Gate).ServeHTTP' [gatemin]='caddymodule.(*Gate).ServeHTTP' [noop]='caddyhttp.VarsMiddleware.ServeHTTP')
echo "| round | configuration | req/s | own share of Caddy's CPU | own µs per request |"
echo "| --: | --- | --: | --: | --: |"
for r in $(seq "$ROUNDS"); do
	for site in gate gatemin noop respond; do
		taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$((SECONDS_PER + 2))s" -H "$COOKIE" \
			"http://127.0.0.1:${PORT[$site]}/" >"$WORK/$site-$r.wrk" &
		wrkpid=$!
		sleep 1
		perf record -q -F "$HZ" -g -p "$PID" -o "$WORK/$site-$r.data" -- sleep "$SECONDS_PER" 2>/dev/null
		wait "$wrkpid"
		rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$site-$r.wrk")
		if grep -q 'Non-2xx' "$WORK/$site-$r.wrk"; then
			echo "| $r | $site | $rps | answers not 2xx: round not counted | — |"
			continue
		fi
		if [ "$site" = respond ]; then
			echo "| $r | respond | $rps | — | — |"
			continue
		fi
		line=$(perf script -i "$WORK/$site-$r.data" -F ip,sym 2>/dev/null |
			"$BT" share -func "${FUNC[$site]}" -top 0 2>/dev/null || true)
		pct=$(sed -n 's/.*share \([0-9.]*\)%.*/\1/p' <<<"$line")
		samples=$(sed -n 's/^samples \([0-9]*\),.*/\1/p' <<<"$line")
		if [ -z "$pct" ] || [ "${samples:-0}" -lt $((HZ * SECONDS_PER / 4)) ]; then
			# perf attached late or not at all: too few samples to read.
			echo "| $r | $site | $rps | perf recorded ${samples:-no} samples: round not counted | — |"
			continue
		fi
		us=$(awk -v p="$pct" -v r="$rps" 'BEGIN {printf "%.2f", p / 100 * 1e6 / r}')
		echo "| $r | $site | $rps | $pct% | $us |"
	done
done
echo
echo "The gate's own work in the last round, by what it called:"
echo
echo '```'
perf script -i "$WORK/gate-$ROUNDS.data" -F ip,sym 2>/dev/null | "$BT" share -func "${FUNC[gate]}" -top 15
echo '```'
echo
echo "The same for the gate with nothing to rewrite (gatemin: no upstream_header, pass_session_credentials):"
echo
echo '```'
perf script -i "$WORK/gatemin-$ROUNDS.data" -F ip,sym 2>/dev/null | "$BT" share -func "${FUNC[gatemin]}" -top 15
echo '```'
echo
echo "Machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end (a shared machine: read single rounds as noisy)."
