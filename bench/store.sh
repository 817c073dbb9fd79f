#!/usr/bin/env bash
# Store benchmarks: creations per second (memory vs file), the gate's hit
# path with both, and the file store's start-up time with 100k and 1M
# sessions. Figures go to bench/results/store.txt (copied into the README's
# performance section by hand). Needs ~2 GB of RAM and ~1.5 GB of disk in
# $TMPDIR for the 1M case; set SMALL=1 to skip it.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out=bench/results/store.txt
large=-authsession.large
[ "${SMALL:-}" = 1 ] && large=
{
	echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(go version) $(nproc) CPUs"
	go test -run '^$' -bench 'Create|GateHit' -benchtime 2s ./bench/
	go test -run '^$' -bench 'MemoryCreate|FileCreate|MemoryGet|FileGet' -benchtime 2s ./state/filestore/
	go test -run '^$' -bench 'FileOpen' -benchtime 1x ./state/filestore/ $large
} 2>&1 | tee "$out"
