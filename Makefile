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

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
		go test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./$$pkg/ > /tmp/authsession-fuzz.log 2>&1 || { cat /tmp/authsession-fuzz.log; exit 1; }; \
	done

clean:
	rm -rf bin
