# Benchmarks (the README, "Performance"). Included from the Makefile.
#
#   make bench      the load benchmark: bin/caddy pinned to one CPU, wrk to
#                   another, on 127.0.0.1; 15-30 min with 1M sessions
#                   (BENCH_SESSIONS=100000 for a shorter run); writes
#                   bench/results/<date>.md (tunables: bench/run.sh)
#   make bench-go   the in-process Go benchmarks of the gate, session
#                   creation and memory per session
#   make bench-share the gate's own share of Caddy's CPU, by sampling with
#                   perf (bin/caddy-sym: bin/caddy with its symbols); ~2 min
#   make bench-instr Caddy's instructions per request under each
#                   configuration, counted by valgrind's callgrind: the
#                   same figures whatever the machine's neighbours do; ~1 min
#                   after the build

BENCH_GO_FLAGS ?= -run '^$$' -bench . -benchmem -count 1 -timeout 30m

.PHONY: bench bench-go bench-share bench-instr

bench: bin/caddy
	bench/run.sh

bench-go:
	go test $(BENCH_GO_FLAGS) ./bench/
	go test -run TestMemoryPerSession -count 1 -v ./bench/ -sessions 100000,1000000

bench-share: bin/caddy-sym
	bench/share.sh

bench-instr: bin/caddy-sym
	bench/share.sh instr

# bin/caddy-sym is bin/caddy with its symbol table, for perf: xcaddy leaves
# out its default "-ldflags -w -s" when build flags are given.
bin/caddy-sym: $(GO_SOURCES)
	@mkdir -p bin
	GOPROXY='$(XCADDY_PROXY)' XCADDY_SKIP_CLEANUP=0 XCADDY_GO_BUILD_FLAGS=-trimpath CGO_ENABLED=0 \
		go tool xcaddy build $(CADDY_VERSION) \
		--with $(MODULE)/caddymodule \
		--replace $(MODULE)=. \
		--output bin/caddy-sym
