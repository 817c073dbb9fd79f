package contract

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

var registerOnce sync.Once

// registerDecoders teaches openapi3filter the XML bodies of the
// risk-analyzer and challenge families.
func registerDecoders() {
	registerOnce.Do(func() {
		openapi3filter.RegisterBodyDecoder("application/xml", xmlBodyDecoder)
		openapi3filter.RegisterBodyDecoder("text/xml", xmlBodyDecoder)
	})
}

// xmlNode is one element of an XML body.
type xmlNode struct {
	name string
	text strings.Builder
	kids []*xmlNode
}

// xmlBodyDecoder turns an XML body into the JSON value its schema
// describes: the schema says which members are objects, arrays (an XML
// list is its element repeated; an absent one is empty) and booleans or
// numbers (XML has only text). Element names are matched to the schema's
// members in any letter case; the root must carry the schema's xml.name
// (any letter case) when the schema gives one.
func xmlBodyDecoder(body io.Reader, _ http.Header, ref *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	dec := xml.NewDecoder(body)
	dec.Strict = true
	var stack []*xmlNode
	var root *xmlNode
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("malformed XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{name: t.Name.Local}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("XML has more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		}
	}
	if root == nil {
		return nil, errors.New("XML has no root element")
	}
	var s *openapi3.Schema
	if ref != nil {
		s = ref.Value
	}
	if s != nil && s.XML != nil && s.XML.Name != "" && !strings.EqualFold(s.XML.Name, root.name) {
		return nil, fmt.Errorf("XML root element is <%s>, want <%s>", root.name, s.XML.Name)
	}
	return xmlValue(root, s), nil
}

// props returns the members a schema describes, through allOf.
func props(s *openapi3.Schema) map[string]*openapi3.Schema {
	if s == nil {
		return nil
	}
	out := map[string]*openapi3.Schema{}
	for name, p := range s.Properties {
		if p != nil && p.Value != nil {
			out[name] = p.Value
		}
	}
	for _, sub := range s.AllOf {
		if sub == nil {
			continue
		}
		for name, p := range props(sub.Value) {
			if _, ok := out[name]; !ok {
				out[name] = p
			}
		}
	}
	return out
}

// only reports whether s allows exactly one JSON type, typ.
func only(s *openapi3.Schema, typ string) bool {
	return s != nil && s.Type != nil && len(*s.Type) == 1 && s.Type.Is(typ)
}

func isObject(s *openapi3.Schema) bool {
	return s != nil && (only(s, "object") || len(props(s)) > 0)
}

func xmlValue(n *xmlNode, s *openapi3.Schema) any {
	if isObject(s) || len(n.kids) > 0 {
		members := props(s)
		out := map[string]any{}
		for _, k := range n.kids {
			name, ps := k.name, (*openapi3.Schema)(nil)
			for pn, p := range members {
				if strings.EqualFold(pn, k.name) {
					name, ps = pn, p
				}
			}
			if only(ps, "array") {
				var items *openapi3.Schema
				if ps.Items != nil {
					items = ps.Items.Value
				}
				list, _ := out[name].([]any)
				out[name] = append(list, xmlValue(k, items))
				continue
			}
			out[name] = xmlValue(k, ps)
		}
		for pn, p := range members {
			if _, ok := out[pn]; !ok && only(p, "array") {
				out[pn] = []any{}
			}
		}
		return out
	}
	text := strings.TrimSpace(n.text.String())
	switch {
	case only(s, "boolean"):
		if b, err := strconv.ParseBool(text); err == nil {
			return b
		}
	case only(s, "integer"), only(s, "number"):
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			return f
		}
	}
	return text
}

// normalizeJSON renames the members of a JSON body to the spelling its
// schema gives them, matching in any letter case (as the families accept).
// A body that is not JSON is returned unchanged for the validator to refuse.
func normalizeJSON(body []byte, s *openapi3.Schema) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return body
	}
	out, err := json.Marshal(rename(v, s))
	if err != nil {
		return body
	}
	return out
}

func rename(v any, s *openapi3.Schema) any {
	switch t := v.(type) {
	case map[string]any:
		members := props(s)
		out := make(map[string]any, len(t))
		for k, val := range t {
			if val == nil {
				continue // null counts as absent, in every family
			}
			name, ps := k, (*openapi3.Schema)(nil)
			if p, ok := members[k]; ok {
				ps = p
			} else {
				for pn, p := range members {
					if strings.EqualFold(pn, k) {
						name, ps = pn, p
					}
				}
			}
			out[name] = rename(val, ps)
		}
		return out
	case []any:
		var items *openapi3.Schema
		if s != nil && s.Items != nil {
			items = s.Items.Value
		}
		for i := range t {
			t[i] = rename(t[i], items)
		}
		return t
	}
	return v
}
