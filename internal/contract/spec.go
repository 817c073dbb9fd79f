// Package contract checks HTTP exchanges against the OpenAPI documents in
// docs/openapi, so that a handler and its document cannot drift apart. It
// is a test kit: the handler tests wrap each family's http.Handler with
// Checker.Handler, the integration tests wrap their client's transport with
// Checker.Transport, and every request/answer pair that reaches a
// documented path is checked (see Checker.check for the rules).
//
// The documents describe the behaviour of the specification; where today's
// code differs, the difference is listed once, in knownDivergences
// (divergences.go), and tolerated with a log line instead of a failure.
package contract

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"

	"github.com/authsession/caddy-authsession/docs/openapi"
)

// Spec is one family's loaded and validated document.
type Spec struct {
	// Name is the document's file name, e.g. "oam.yaml".
	Name string
	Doc  *openapi3.T
	// relative is set for a family served relative to its mount point
	// (x-mount: relative): its paths may follow any prefix.
	relative bool
	paths    []pathTemplate
}

type pathTemplate struct {
	path     string
	segs     []string
	literals int
	item     *openapi3.PathItem
}

var (
	loadOnce  sync.Once
	loadSpecs []*Spec
	errLoad   error
)

// Specs loads and validates every document once (OpenAPI 3.1 rules,
// examples included).
func Specs() ([]*Spec, error) {
	loadOnce.Do(func() { loadSpecs, errLoad = load() })
	return loadSpecs, errLoad
}

func load() ([]*Spec, error) {
	registerDecoders()
	var specs []*Spec
	for _, name := range openapi.Names() {
		b, _ := openapi.Document(name)
		doc, err := openapi3.NewLoader().LoadFromData(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if !doc.IsOpenAPI31OrLater() {
			return nil, fmt.Errorf("%s: openapi is %q, want 3.1", name, doc.OpenAPI)
		}
		if err := doc.Validate(context.Background()); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		s := &Spec{Name: name, Doc: doc, relative: doc.Extensions["x-mount"] == "relative"}
		for p, item := range doc.Paths.Map() {
			t := pathTemplate{path: p, segs: strings.Split(strings.Trim(p, "/"), "/"), item: item}
			for _, seg := range t.segs {
				if !strings.HasPrefix(seg, "{") {
					t.literals++
				}
			}
			s.paths = append(s.paths, t)
		}
		// Concrete paths win over templated ones (OpenAPI 3.1, Paths Object).
		sort.Slice(s.paths, func(i, j int) bool {
			if s.paths[i].literals != s.paths[j].literals {
				return s.paths[i].literals > s.paths[j].literals
			}
			return s.paths[i].path < s.paths[j].path
		})
		specs = append(specs, s)
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("no document in docs/openapi")
	}
	return specs, nil
}

// Match is a request's place in the documents.
type Match struct {
	Spec   *Spec
	Path   string
	Item   *openapi3.PathItem
	Params map[string]string
	// Route is nil when the path is documented but the method is not.
	Route *routers.Route
}

// Family returns the document's name without ".yaml".
func (m *Match) Family() string { return strings.TrimSuffix(m.Spec.Name, ".yaml") }

// OperationID returns the operation's id, or "" for an undocumented method.
func (m *Match) OperationID() string {
	if m.Route == nil {
		return ""
	}
	return m.Route.Operation.OperationID
}

// Find returns where method and the URL path p are documented, or nil.
func Find(specs []*Spec, method, p string) *Match {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for _, s := range specs {
		for start := range len(segs) {
			if start > 0 && !s.relative {
				break
			}
			for _, t := range s.paths {
				params, ok := t.match(segs[start:])
				if !ok {
					continue
				}
				m := &Match{Spec: s, Path: t.path, Item: t.item, Params: params}
				if op := t.item.GetOperation(method); op != nil {
					m.Route = &routers.Route{Spec: s.Doc, Path: t.path, PathItem: t.item, Method: method, Operation: op}
				}
				return m
			}
		}
	}
	return nil
}

func (t pathTemplate) match(segs []string) (map[string]string, bool) {
	if len(segs) != len(t.segs) {
		return nil, false
	}
	params := map[string]string{}
	for i, seg := range t.segs {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			if segs[i] == "" {
				return nil, false
			}
			params[strings.TrimSuffix(name, "}")] = segs[i]
			continue
		}
		if seg != segs[i] {
			return nil, false
		}
	}
	return params, true
}

// Methods returns the documented methods of a path item, sorted.
func Methods(item *openapi3.PathItem) []string {
	ops := item.Operations()
	ms := make([]string, 0, len(ops))
	for m := range ops {
		ms = append(ms, strings.ToUpper(m))
	}
	sort.Strings(ms)
	return ms
}

// Operations lists every documented operation of every document.
func Operations(specs []*Spec) []*Match {
	var out []*Match
	for _, s := range specs {
		for _, t := range s.paths {
			for _, method := range Methods(t.item) {
				op := t.item.GetOperation(method)
				out = append(out, &Match{
					Spec: s, Path: t.path, Item: t.item,
					Route: &routers.Route{Spec: s.Doc, Path: t.path, PathItem: t.item, Method: method, Operation: op},
				})
			}
		}
	}
	return out
}

// statusText names a status for messages.
func statusText(code int) string { return fmt.Sprintf("%d %s", code, http.StatusText(code)) }
