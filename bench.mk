# Benchmarks (the README, "Performance"). Included from the Makefile.
#
#   make bench      the load benchmark: bin/caddy + wrk on 127.0.0.1, ~6-7 min,
#                   writes bench/results/<date>.md (tunables: bench/run.sh)
#   make bench-go   the in-process Go benchmarks of the gate, session
#                   creation and memory per session

BENCH_GO_FLAGS ?= -run '^$$' -bench . -benchmem -count 1 -timeout 30m

.PHONY: bench bench-go

bench: bin/caddy
	bench/run.sh

bench-go:
	go test $(BENCH_GO_FLAGS) ./bench/
	go test -run TestMemoryPerSession -count 1 -v ./bench/ -sessions 100000,1000000
