package contract

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/authsession/caddy-authsession/docs/openapi"
)

// TestDocumentsValidate loads every document and validates it as OpenAPI
// 3.1 (kin-openapi checks the schemas with JSON Schema 2020-12, examples
// included).
func TestDocumentsValidate(t *testing.T) {
	names := openapi.Names()
	if len(names) != len(openapi.Families) {
		t.Fatalf("documents %v, want one per family %v", names, openapi.Families)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			b, ok := openapi.Document(name)
			if !ok {
				t.Fatal("not embedded")
			}
			doc, err := openapi3.NewLoader().LoadFromData(b)
			if err != nil {
				t.Fatal(err)
			}
			if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
				t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
			}
			if err := doc.Validate(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(doc.Components.SecuritySchemes) == 0 || len(doc.Security) == 0 {
				t.Error("no security scheme")
			}
		})
	}
	specs, err := Specs()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range Operations(specs) {
		op := m.Route.Operation
		if op.OperationID == "" {
			t.Errorf("%s %s: no operationId", m.Route.Method, m.Path)
		}
		if op.Responses.Status(401) == nil {
			t.Errorf("%s: 401 is not documented", op.OperationID)
		}
		for code, ref := range op.Responses.Map() {
			if code[0] >= '4' && len(ref.Value.Content) == 0 && m.Family() != "risk-analyzer" {
				t.Errorf("%s: %s has no error body", op.OperationID, code)
			}
		}
	}
}

// fakeTB records a Checker's failures instead of failing the test.
type fakeTB struct {
	testing.TB
	errs []string
}

func (f *fakeTB) Helper()                   {}
func (f *fakeTB) Cleanup(func())            {}
func (f *fakeTB) Logf(string, ...any)       {}
func (f *fakeTB) Errorf(s string, _ ...any) { f.errs = append(f.errs, s) }

// TestCheckerCatchesDrift shows the checker failing on answers that
// disagree with the documents, and passing a conforming one.
func TestCheckerCatchesDrift(t *testing.T) {
	const base = "/oam/services/rest/access/api/v1"
	cases := []struct {
		name, method, path, body string
		handler                  http.HandlerFunc
		wantFail                 string
	}{
		{"conforming", "GET", base + "/session/abc", "", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"code":404,"message":"session not found or expired","fields":"sessionId"}`))
		}, ""},
		{"missing member", "GET", base + "/session/abc", "", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"userId":"alice"}`))
		}, "does not match"},
		{"wrong type", "GET", base + "/session/abc", "", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"code":"404","message":"x"}`))
		}, "does not match"},
		{"undocumented status", "GET", base + "/session/abc", "", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusTeapot)
		}, "status is not supported"},
		{"wrong media type", "GET", base + "/session/abc", "", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`not found`))
		}, "does not match"},
		{"refused request answered 200", "POST", base + "/session", `{"clientIp":"x"}`, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"userId":"a","sessionIndex":"i","createTime":"2026-01-01T00:00:00Z","updateTime":"2026-01-01T00:00:00Z","lastAccessTime":"2026-01-01T00:00:00Z","expiryTime":"2026-01-01T00:00:00Z","isImpersonating":false}`))
		}, "document refuses"},
		{"405 without Allow", "PATCH", base + "/session", "", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(405)
		}, "Allow header"},
		{"401 without WWW-Authenticate", "GET", base + "/session/abc", "", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"code":401,"message":"no"}`))
		}, "WWW-Authenticate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := &fakeTB{TB: t}
			chk := New(tb)
			req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			chk.Handler(c.handler).ServeHTTP(httptest.NewRecorder(), req)
			if chk.Pairs() != 1 {
				t.Fatalf("checked %d pairs, want 1", chk.Pairs())
			}
			fails := strings.Join(chk.Failures(), "\n")
			switch {
			case c.wantFail == "" && fails != "":
				t.Fatalf("conforming exchange failed: %s", fails)
			case c.wantFail != "" && !strings.Contains(fails, c.wantFail):
				t.Fatalf("want a failure about %q, got %q", c.wantFail, fails)
			}
		})
	}
}

func TestFindPrefersConcretePaths(t *testing.T) {
	specs, err := Specs()
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/risk-analyzer/session/v1/updatesessionsecurely": "raUpdateSession",
		"/risk-analyzer/session/v1/some-id":               "raUpdateSessionDeprecated",
		"/user/2024-3/sessions/abc":                       "otpPutSession",
		"/sessions/abc":                                   "otpPutSession",
	} {
		m := Find(specs, "PUT", path)
		if m == nil || m.OperationID() != want {
			t.Errorf("PUT %s → %+v, want %s", path, m, want)
		}
	}
	if m := Find(specs, "GET", "/elsewhere/oam/services/rest/access/api/v1/session/x"); m != nil {
		t.Errorf("a prefixed OAM path matched %s", m.Path)
	}
}
