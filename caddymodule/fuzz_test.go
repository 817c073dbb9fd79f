package caddymodule

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

var caddyfileSeeds = []string{
	"store memory {\ncleanup_interval 2m\n}\nsession_lifetime 4h\nidle_timeout off",
	"cookie {\nname sid\ndomain example.com\npath /\ninsecure\n}",
	"api_user admin $2a$04$ZiUS0wcKyHEdBbRexZK2ZOz8AmWRI1E5lYF7.zTQTgbzCRU6IlRKi\napi_token {env.T}",
	"idle_timeout\n}",
	"idle_timeout off off off",
	"store",
	"store memory {\n{\n}",
	"cookie {\ncookie {\n}\n}",
	"}}}}{{{{",
	"login_url /a\nsession_header Authorization Bearer\nupstream_header X login\nrequire_group a b",
	"max_auth_age -1\nrequire_factor",
	"\"quoted arg\" `backtick`\n<<EOF\nheredoc\nEOF",
}

// FuzzGlobalOption feeds arbitrary blocks to the global option and the
// gate directive: they may refuse, never panic.
func FuzzGlobalOption(f *testing.F) {
	for _, s := range caddyfileSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, block string) {
		for _, input := range []string{
			"authsession {\n" + block + "\n}",
			"authsession " + block,
		} {
			tokens, err := caddyfile.Tokenize([]byte(input), "fuzz")
			if err != nil {
				continue
			}
			_ = new(App).UnmarshalCaddyfile(caddyfile.NewDispenser(tokens))
		}
		for _, input := range []string{
			"authsession gate {\n" + block + "\n}",
			"authsession api " + block,
			"authsession " + block,
		} {
			tokens, err := caddyfile.Tokenize([]byte(input), "fuzz")
			if err != nil {
				continue
			}
			_, _ = parseHandlerDirective(httpcaddyfile.Helper{Dispenser: caddyfile.NewDispenser(tokens)})
		}
	})
}
