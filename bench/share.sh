#!/usr/bin/env bash
# bench/share.sh — the gate's own share of Caddy's CPU, by sampling
# (`make bench-share`, docs/performance.md "The gate's share by sampling").
#
# A throughput ratio (make bench) moves by several percent from one run to
# the next on a shared machine, more than the gate costs. This measures the
# cost inside one process instead: bin/caddy-sym (this repository's Caddy
# with its symbols) serves `respond` behind the gate, behind the gate with
# nothing to rewrite (gatemin: no upstream header, credentials passed on, so
# it does only what every gate must: read the cookie, hash the id, find the
# session, check it), behind a no-op handler (`vars`), and alone, pinned to
# BENCH_CADDY_CPU, loaded by wrk pinned to BENCH_LOAD_CPU, all on 127.0.0.1; for each of SHARE_ROUNDS interleaved
# rounds `perf record` samples Caddy (cpu-clock at SHARE_HZ, call graphs by
# frame pointers) for SHARE_SECONDS under each configuration, and
# `benchtool share` counts the samples in the handler's own work (its
# ServeHTTP, the next handler's call apart). The share times Caddy's CPU
# time per request (1 / req/s, the core being saturated) is the handler's
# cost per request. The shares of one round are samples of the same
# seconds of the machine, so its noise moves them together.
#
# SHARE_KEEP=dir keeps the perf recordings (and the binary) there, for
# `perf report` or `benchtool share -func` on a callee.
#
# Needs perf (Debian: linux-perf) and wrk; perf_event_paranoid ≤ 2 for a
# process of one's own. Never part of make test.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CADDY=${CADDY_SYM:-$ROOT/bin/caddy-sym}
ROUNDS=${SHARE_ROUNDS:-3}
SECONDS_PER=${SHARE_SECONDS:-10}
HZ=${SHARE_HZ:-4999}
CADDY_CPU=${BENCH_CADDY_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
CONNS=${BENCH_CONNS:-32}

for tool in perf wrk taskset; do
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
mapfile -t P < <("$BT" freeports 5)
declare -A PORT=([respond]=${P[0]} [noop]=${P[1]} [gate]=${P[2]} [api]=${P[3]} [gatemin]=${P[4]})
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
		api_user admin \$2a\$10\$6uE4D.zKrxsSS.zw5Iz3ve2C.PtdBc0jTfg0xPIDlOr7BCaSGr5WW
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
http://127.0.0.1:${PORT[api]} {
	authsession api
}
EOF
XDG_DATA_HOME=$WORK/data XDG_CONFIG_HOME=$WORK/config taskset -c "$CADDY_CPU" "$CADDY" run --config "$WORK/Caddyfile" --adapter caddyfile >"$WORK/caddy.out" 2>&1 &
PID=$!
for _ in $(seq 100); do
	curl -s -o /dev/null "http://127.0.0.1:${PORT[respond]}/" && break
	sleep 0.1
done
"$BT" preload -url "http://127.0.0.1:${PORT[api]}" -n 1 -c 1 -deadline 30s >/dev/null
COOKIE="Cookie: authsession=$("$BT" sessionid 0)"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$COOKIE" "http://127.0.0.1:${PORT[gate]}/")" = 200 ] ||
	{ echo "the gate refused the benchmark session" >&2; exit 1; }
for site in respond noop gate gatemin; do
	taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d2s -H "$COOKIE" "http://127.0.0.1:${PORT[$site]}/" >/dev/null
done

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
