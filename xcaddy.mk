# Builds bin/caddy with this plugin through xcaddy, pinned as a Go tool in go.mod.
#
# The module proxy of a locked-down machine may answer 403 for modules it does
# not know (ours), which xcaddy asks about before the local replacement
# applies. GOPROXY is therefore derived from `go env GOPROXY`: "direct" is
# dropped, every "," (fall through on 404 only) becomes "|" (fall through on
# any error), and "|off" is appended, so Go falls back to the replacement.

CADDY_VERSION ?= v2.11.9
MODULE        := github.com/authsession/caddy-authsession
XCADDY_PROXY  := $(shell go env GOPROXY | tr ',' '\n' | grep -v '^direct$$' | grep -v '^off$$' | paste -sd'|' -)|off
GO_SOURCES    := $(shell find state handlers caddymodule -name '*.go' -not -name '*_test.go') $(wildcard handlers/portal/templates/*.html) go.mod go.sum

bin/caddy: $(GO_SOURCES)
	@mkdir -p bin
	GOPROXY='$(XCADDY_PROXY)' XCADDY_SKIP_CLEANUP=0 CGO_ENABLED=0 \
		go tool xcaddy build $(CADDY_VERSION) \
		--with $(MODULE)/caddymodule \
		--replace $(MODULE)=. \
		--output bin/caddy
