# Benchmarks (the README, "Performance"). Included from the Makefile.
#
#   make bench      the load benchmark: bin/caddy pinned to one CPU, wrk to
#                   another, on 127.0.0.1; 15-30 min with 1M sessions
#                   (BENCH_SESSIONS=100000 for a shorter run); writes
#                   bench/results/<date>.md (tunables: bench/run.sh)
#   make bench-go   the in-process Go benchmarks of the gate, session
#                   creation and memory per session

BENCH_GO_FLAGS ?= -run '^$$' -bench . -benchmem -count 1 -timeout 30m

.PHONY: bench bench-go

bench: bin/caddy
	bench/run.sh

bench-go:
	go test $(BENCH_GO_FLAGS) ./bench/
	go test -run TestMemoryPerSession -count 1 -v ./bench/ -sessions 100000,1000000
