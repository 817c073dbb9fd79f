# caddy-authsession: `make run` to try it, `make test` to test it.

include xcaddy.mk
include bench.mk

GO_TEST_FLAGS ?= -race -count=1 -timeout 15m

# Fuzz targets that `make test` runs for FUZZTIME each (their seed corpora
# also run in every plain `go test`). `make fuzz FUZZTIME=1m` for longer runs.
FUZZTIME ?= 3s
FUZZ_TARGETS := \
	handlers:FuzzRiskAnalyzerJSON handlers:FuzzRiskAnalyzerXML \
	handlers:FuzzDecodeJSON handlers:FuzzOAMCreate handlers:FuzzSearchCompile \
	handlers:FuzzOTPBodies handlers:FuzzCookieValue handlers:FuzzAuthnDecode handlers:FuzzAuthnPUT \
	state/filestore:FuzzDecodeRecord state:FuzzParseUsers caddymodule:FuzzGlobalOption

.PHONY: build run test lint unit fuzz clean

build: bin/caddy

## run: build bin/caddy and serve Caddyfile.example on http://localhost:8080
run: bin/caddy
	./bin/caddy run --config Caddyfile.example --adapter caddyfile

## test: lint, the fuzzers briefly, then every test with the race detector (tests that need bin/caddy build it first)
test: lint fuzz unit

## lint: golangci-lint (pinned in internal/tools/go.mod, so its dependencies never touch the plugin's go.mod) with .golangci.yml
LINT := go tool -modfile=internal/tools/go.mod golangci-lint
lint:
	$(LINT) run ./...

unit: bin/caddy
	AUTHSESSION_CADDY_BIN=$(CURDIR)/bin/caddy go test $(GO_TEST_FLAGS) ./...

# A run that fails with "context deadline exceeded" and writes no failing
# input is the fuzzer stopping mid-input at -fuzztime (a Go toolchain
# quirk, seen on a loaded 2-core machine), not a finding: it is run once more.
fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
		for try in 1 2; do \
			if go test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./$$pkg/ > $$log 2>&1; then break; fi; \
			if [ $$try = 1 ] && grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
				echo "  stopped mid-input at the time limit, no failing input: once more"; continue; fi; \
			cat $$log; exit 1; \
		done; \
	done

clean:
	rm -rf bin
