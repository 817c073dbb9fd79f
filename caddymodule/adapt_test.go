package caddymodule

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	// Caddyfile.example uses standard directives (reverse_proxy, respond, …).
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// adapt runs the Caddyfile adapter on input.
func adapt(t *testing.T, input string) ([]byte, []caddyconfig.Warning, error) {
	t.Helper()
	a := caddyconfig.GetAdapter("caddyfile")
	if a == nil {
		t.Fatal("no caddyfile adapter")
	}
	return a.Adapt([]byte(input), nil)
}

// TestAdaptFixtures adapts each testdata/*.caddyfiletest (a Caddyfile, a
// line "----------", then the expected JSON) and compares the JSON.
func TestAdaptFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.caddyfiletest")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no fixtures in testdata")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, expected, ok := strings.Cut(string(raw), "\n----------\n")
			if !ok {
				t.Fatalf("%s has no ---------- separator line", file)
			}
			got, warnings, err := adapt(t, input+"\n")
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			for _, w := range warnings {
				t.Errorf("warning: %s:%d: %s: %s", file, w.Line, w.Directive, w.Message)
			}
			if g, w := normJSON(t, got), normJSON(t, []byte(expected)); g != w {
				t.Errorf("adapted JSON differs.\ngot:\n%s\nwant:\n%s", g, w)
			}
		})
	}
}

// TestAdaptCaddyfileExample adapts the repository's Caddyfile.example
// itself (not a copy) and checks it configures the app and both handlers.
func TestAdaptCaddyfileExample(t *testing.T) {
	raw, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	out, warnings, err := adapt(t, string(raw))
	if err != nil {
		t.Fatalf("adapting Caddyfile.example: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("warning: Caddyfile.example:%d: %s: %s", w.Line, w.Directive, w.Message)
	}
	var cfg struct {
		Apps struct {
			Authsession *App           `json:"authsession"`
			HTTP        map[string]any `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	app := cfg.Apps.Authsession
	if app == nil {
		t.Fatalf("no authsession app in\n%s", out)
	}
	if len(app.APIUsers) != 1 || app.APIUsers[0].Username != "admin" || !strings.HasPrefix(app.APIUsers[0].PasswordHash, "$2") {
		t.Errorf("api users: %+v", app.APIUsers)
	}
	if !strings.Contains(string(app.StoreRaw), `"module":"memory"`) {
		t.Errorf("store: %s", app.StoreRaw)
	}
	if app.Cookie == nil || !app.Cookie.Insecure {
		t.Errorf("cookie: %+v", app.Cookie)
	}
	var handlers []string
	collectHandlers(cfg.Apps.HTTP, &handlers)
	api, gate, proxy := indexOf(handlers, "authsession_api"), indexOf(handlers, "authsession_gate"), indexOf(handlers, "reverse_proxy")
	if api < 0 || gate < 0 || proxy < 0 {
		t.Fatalf("handlers %v: want authsession_api, authsession_gate and reverse_proxy", handlers)
	}
	if api >= gate || gate >= proxy {
		t.Errorf("handler order %v: want the API, then the gate, then the proxy", handlers)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// collectHandlers lists the "handler" names of a config tree in order.
func collectHandlers(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		if h, ok := x["handler"].(string); ok {
			*out = append(*out, h)
		}
		// Visit in a fixed order so that routes keep their sequence.
		for _, k := range []string{"servers", "srv0", "srv1", "routes", "handle"} {
			if c, ok := x[k]; ok {
				collectHandlers(c, out)
			}
		}
		for k, c := range x {
			switch k {
			case "servers", "srv0", "srv1", "routes", "handle":
			default:
				collectHandlers(c, out)
			}
		}
	case []any:
		for _, c := range x {
			collectHandlers(c, out)
		}
	}
}

// A __Host- cookie name adapts as is; adapting refuses it with insecure or
// a domain (browsers would drop such cookies).
func TestAdaptHostPrefixCookie(t *testing.T) {
	out, _, err := adapt(t, "{\n\tauthsession {\n\t\tcookie {\n\t\t\tname __Host-authsession\n\t\t}\n\t}\n}\nexample.com {\n\tauthsession portal\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"name":"__Host-authsession"`) {
		t.Fatalf("adapted: %s", out)
	}
	for _, opt := range []string{"insecure", "domain example.com", "path /app"} {
		_, _, err := adapt(t, "{\n\tauthsession {\n\t\tcookie {\n\t\t\tname __Host-authsession\n\t\t\t"+opt+"\n\t\t}\n\t}\n}\nexample.com {\n\tauthsession portal\n}\n")
		if err == nil || !strings.Contains(err.Error(), "__Host-") {
			t.Errorf("%s: adapt error %v, want a __Host- refusal", opt, err)
		}
	}
}
