package caddymodule

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authsession/caddy-authsession/docs/openapi"
	"github.com/authsession/caddy-authsession/handlers"
)

func init() {
	caddy.RegisterModule(API{})
}

// API serves the session and authentication API families at their spec
// paths (see the README). Requests for any other path go to the next
// handler, so it can sit in front of everything else in a route.
//
// Failures are answered in each family's own error shape; it never returns
// a handler error for bad input or bad credentials.
type API struct {
	// Families lists the API families to serve: oam, risk_analyzer, otp,
	// authn. Default: all.
	Families []string `json:"families,omitempty"`
	// OpenAPI, when set, is a URL path prefix under which the OpenAPI
	// documents of the served families are answered to GET and HEAD, as
	// <prefix>/<family>.yaml (oam, risk-analyzer, otp, authn). Off by
	// default. The documents are public: put the route behind a matcher
	// or basic_auth to restrict them.
	OpenAPI string `json:"openapi,omitempty"`

	app *App
	mux *http.ServeMux
}

// family is one API family's endpoints.
type family interface{ Register(*http.ServeMux) }

// familyNames lists the known families, in the order they are mounted.
var familyNames = []string{"oam", "risk_analyzer", "otp", "authn"}

// CaddyModule returns the Caddy module information.
func (API) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.authsession_api",
		New: func() caddy.Module { return new(API) },
	}
}

// Provision builds the families' routes on the app's store.
func (h *API) Provision(ctx caddy.Context) error {
	app, err := appFrom(ctx)
	if err != nil {
		return err
	}
	h.app = app
	if len(h.Families) == 0 {
		h.Families = slices.Clone(familyNames)
	}
	h.mux = http.NewServeMux()
	for _, name := range h.Families {
		f, err := h.newFamily(name)
		if err != nil {
			return err
		}
		f.Register(h.mux)
	}
	if h.OpenAPI != "" {
		h.registerOpenAPI()
	}
	return nil
}

// openAPIDocs names the document of each family.
var openAPIDocs = map[string]string{
	"oam": "oam.yaml", "risk_analyzer": "risk-analyzer.yaml", "otp": "otp.yaml", "authn": "authn.yaml",
}

// registerOpenAPI serves the served families' OpenAPI documents under the
// OpenAPI prefix.
func (h *API) registerOpenAPI() {
	prefix := strings.TrimSuffix(h.OpenAPI, "/")
	for _, name := range h.Families {
		file := openAPIDocs[name]
		doc, ok := openapi.Document(file)
		if !ok {
			continue
		}
		h.mux.HandleFunc(prefix+"/"+file, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			hd := w.Header()
			hd.Set("Content-Type", "application/yaml")
			hd.Set("X-Content-Type-Options", "nosniff")
			hd.Set("Content-Length", strconv.Itoa(len(doc)))
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodGet {
				_, _ = w.Write(doc)
			}
		})
	}
}

func (h *API) newFamily(name string) (family, error) {
	switch name {
	case "oam":
		return &handlers.OAM{Env: h.app.env, Auth: h.app.basic}, nil
	case "risk_analyzer":
		return h.app.riskAnalyzer()
	case "otp":
		return h.app.otpFamily(), nil
	case "authn":
		return h.app.authnFamily(), nil
	}
	return nil, fmt.Errorf("unknown API family %q (known: %v)", name, familyNames)
}

// Validate checks the family names.
func (h *API) Validate() error {
	for i, name := range h.Families {
		if !slices.Contains(familyNames, name) {
			return fmt.Errorf("unknown API family %q (known: %v)", name, familyNames)
		}
		if slices.Contains(h.Families[:i], name) {
			return fmt.Errorf("API family %q listed twice", name)
		}
	}
	if h.OpenAPI != "" && (!strings.HasPrefix(h.OpenAPI, "/") || strings.ContainsAny(h.OpenAPI, "{}*? ")) {
		return fmt.Errorf("openapi: %q must be a URL path starting with / (no patterns)", h.OpenAPI)
	}
	return nil
}

// ServeHTTP serves an API request or passes it on.
func (h *API) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if _, pattern := h.mux.Handler(r); pattern == "" {
		return next.ServeHTTP(w, r)
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	h.mux.ServeHTTP(rec, r) // sets the path values the handlers read
	h.app.metrics.api.WithLabelValues(strconv.Itoa(rec.status/100) + "xx").Inc()
	return nil
}

// statusRecorder remembers the status code written.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Interface guards
var (
	_ caddy.Provisioner           = (*API)(nil)
	_ caddy.Validator             = (*API)(nil)
	_ caddyhttp.MiddlewareHandler = (*API)(nil)
)
