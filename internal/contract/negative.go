package contract

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// Negative is one generated bad request for an operation.
type Negative struct {
	Name        string
	ContentType string // "" sends none
	Accept      string // "" sends none
	Body        []byte
	// Want is the exact status the document gives for this kind of
	// mistake, or 0 when any documented 4xx will do (the checker still
	// checks its shape).
	Want int
}

// oversize is more than the 64 KiB every family accepts.
const oversize = 64<<10 + 512

// Negatives generates bad requests for an operation from its document: for
// an operation with a JSON request body, its first example (by name)
// mutated member by member (wrong types, missing required members, unknown
// enum values), then as a whole (wrong media type, oversize, null,
// malformed); for every operation an unacceptable Accept. Each is expected
// to be answered with a documented 4xx, never a 2xx, a 5xx or a dropped
// connection.
func Negatives(m *Match) []Negative {
	op := m.Route.Operation
	var out []Negative
	if op.Responses.Status(406) != nil {
		body := []byte(nil)
		ct := ""
		if ex, _ := jsonExample(op); ex != nil {
			body, _ = json.Marshal(ex)
			ct = "application/json"
		}
		out = append(out, Negative{Name: "accept/unacceptable", ContentType: ct, Accept: "application/x-unknown", Body: body, Want: 406})
	}
	example, schema := jsonExample(op)
	if example == nil {
		return out
	}
	valid, _ := json.Marshal(example)
	add := func(name string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		out = append(out, Negative{Name: name, ContentType: "application/json", Body: b})
	}
	walk(example, schema, nil, func(path []string, v any, s *openapi3.Schema, parent *openapi3.Schema) {
		at := "/" + strings.Join(path, "/")
		if bad, ok := wrongValue(s); ok {
			add("wrong-type"+at, replaced(example, path, bad))
		}
		if parent != nil && slices.Contains(parent.Required, path[len(path)-1]) {
			add("missing-required"+at, replaced(example, path, deleted{}))
		}
		if len(s.Enum) > 0 {
			add("unknown-enum"+at, replaced(example, path, "not-a-documented-value"))
		}
		if only(s, "array") && s.Items != nil && s.Items.Value != nil && len(s.Items.Value.Enum) > 0 {
			add("unknown-enum"+at+"/0", replaced(example, path, []any{"not-a-documented-value"}))
		}
	})
	if op.Responses.Status(415) != nil {
		out = append(out, Negative{Name: "media-type/text-plain", ContentType: "text/plain", Body: valid, Want: 415})
		out = append(out, Negative{Name: "media-type/form", ContentType: "application/x-www-form-urlencoded", Body: []byte("a=b"), Want: 415})
	}
	if op.Responses.Status(413) != nil {
		big := map[string]any{}
		if obj, ok := example.(map[string]any); ok {
			maps.Copy(big, obj)
		}
		big["zzPadding"] = strings.Repeat("x", oversize)
		b, _ := json.Marshal(big)
		out = append(out, Negative{Name: "oversize", ContentType: "application/json", Body: b, Want: 413})
	}
	out = append(out,
		Negative{Name: "body/null", ContentType: "application/json", Body: []byte("null")},
		Negative{Name: "body/array", ContentType: "application/json", Body: []byte("[]")},
		Negative{Name: "body/malformed", ContentType: "application/json", Body: []byte(`{"a":`)},
	)
	if op.RequestBody.Value.Required {
		out = append(out, Negative{Name: "body/empty", ContentType: "application/json"})
	}
	return out
}

// jsonExample returns the first (by name) JSON example of op's request
// body, as a JSON value, and its schema.
func jsonExample(op *openapi3.Operation) (any, *openapi3.Schema) {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return nil, nil
	}
	media := op.RequestBody.Value.Content.Get("application/json")
	if media == nil || media.Schema == nil || len(media.Examples) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(media.Examples))
	for n := range media.Examples {
		names = append(names, n)
	}
	slices.Sort(names)
	ex := media.Examples[names[0]]
	if ex == nil || ex.Value == nil {
		return nil, nil
	}
	b, err := json.Marshal(ex.Value.Value)
	if err != nil {
		return nil, nil
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return nil, nil
	}
	return v, media.Schema.Value
}

// walk calls f for every member present in v (objects' members and the
// first item of arrays), with its schema and the schema of the object
// holding it.
func walk(v any, s *openapi3.Schema, path []string, f func(path []string, v any, s, parent *openapi3.Schema)) {
	switch t := v.(type) {
	case map[string]any:
		members := props(s)
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ms := members[k]
			if ms == nil {
				continue
			}
			p := append(slices.Clone(path), k)
			f(p, t[k], ms, s)
			walk(t[k], ms, p, f)
		}
	case []any:
		if len(t) > 0 && s != nil && s.Items != nil && s.Items.Value != nil {
			walk(t[0], s.Items.Value, append(slices.Clone(path), "0"), f)
		}
	}
}

// wrongValue returns a value of a JSON type s refuses.
func wrongValue(s *openapi3.Schema) (any, bool) {
	for _, v := range []any{map[string]any{"unexpected": 1}, []any{1}, 12.5, true, "not-a-number"} {
		if s.VisitJSON(v, openapi3.EnableJSONSchema2020()) != nil {
			return v, true
		}
	}
	return nil, false
}

// deleted marks a member to remove.
type deleted struct{}

// replaced returns a deep copy of v with the member at path set to nv (or
// removed when nv is deleted{}).
func replaced(v any, path []string, nv any) any {
	b, _ := json.Marshal(v)
	var c any
	_ = json.Unmarshal(b, &c)
	cur := c
	for i, k := range path {
		last := i == len(path)-1
		switch t := cur.(type) {
		case map[string]any:
			if last {
				if _, del := nv.(deleted); del {
					delete(t, k)
				} else {
					t[k] = nv
				}
				return c
			}
			cur = t[k]
		case []any:
			var idx int
			_, _ = fmt.Sscan(k, &idx)
			if last {
				t[idx] = nv
				return c
			}
			cur = t[idx]
		}
	}
	return c
}
