# caddy-authsession: `make run` to try it, `make test` to test it.

include xcaddy.mk
include bench.mk

GO_TEST_FLAGS ?= -race -count=1 -timeout 15m

.PHONY: build run test clean

build: bin/caddy

## run: build bin/caddy and serve Caddyfile.example on http://localhost:8080
run: bin/caddy
	./bin/caddy run --config Caddyfile.example --adapter caddyfile

## test: every test, with the race detector (tests that need bin/caddy build it first)
test: bin/caddy
	AUTHSESSION_CADDY_BIN=$(CURDIR)/bin/caddy go test $(GO_TEST_FLAGS) ./...

clean:
	rm -rf bin
