package handlers

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
)

// Limits of the generic document decoder, so a hostile body (deep nesting,
// very many elements) is refused early. The body itself is capped at MaxBody.
const (
	maxDocDepth  = 16
	maxDocTokens = 4096
)

// doc is a decoded request body, JSON or XML, as a tree whose member names
// are lower-cased: the families that take both encodings accept any letter
// case on input. Scalars keep their text; json remembers the JSON kind.
type doc struct {
	kind string // "string", "number", "bool", "object", "array", "text" (XML)
	text string
	kids map[string]*doc
	// items are a JSON array's elements (nil for a null one); reps an
	// XML element's children by name, every occurrence in order.
	items []*doc
	reps  map[string][]*doc
	// root is the local name of an XML document's root element, as sent
	// ("" for JSON and for every element but the root).
	root string
}

// decodeDoc decodes a JSON or XML body into a doc.
func decodeDoc(body []byte, media string) (*doc, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &FieldError{Msg: "request body is empty"}
	}
	if media == mediaXML {
		return decodeXMLDoc(body)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tokens := 0
	d, err := jsonDoc(dec, 0, &tokens)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &FieldError{Msg: "request body has data after the JSON value"}
	}
	if d == nil || d.kind != "object" { // nil: the body is JSON null
		return nil, &FieldError{Msg: "request body must be a JSON object"}
	}
	return d, nil
}

func jsonDoc(dec *json.Decoder, depth int, tokens *int) (*doc, error) {
	if depth > maxDocDepth {
		return nil, &FieldError{Msg: "request body is nested too deeply"}
	}
	*tokens++
	if *tokens > maxDocTokens {
		return nil, &FieldError{Msg: "request body has too many values"}
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, &FieldError{Msg: "malformed JSON"}
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			d := &doc{kind: "object", kids: map[string]*doc{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, &FieldError{Msg: "malformed JSON"}
				}
				name, _ := kt.(string)
				kid, err := jsonDoc(dec, depth+1, tokens)
				if err != nil {
					return nil, err
				}
				if kid != nil {
					d.kids[strings.ToLower(name)] = kid
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, &FieldError{Msg: "malformed JSON"}
			}
			return d, nil
		case '[':
			d := &doc{kind: "array"}
			for dec.More() {
				item, err := jsonDoc(dec, depth+1, tokens)
				if err != nil {
					return nil, err
				}
				d.items = append(d.items, item)
			}
			if _, err := dec.Token(); err != nil {
				return nil, &FieldError{Msg: "malformed JSON"}
			}
			return d, nil
		}
		return nil, &FieldError{Msg: "malformed JSON"}
	case string:
		return &doc{kind: "string", text: v}, nil
	case json.Number:
		return &doc{kind: "number", text: v.String()}, nil
	case bool:
		return &doc{kind: "bool", text: strconv.FormatBool(v)}, nil
	case nil:
		return nil, nil // null: as if absent
	}
	return nil, &FieldError{Msg: "malformed JSON"}
}

// decodeXMLDoc decodes an XML document: the root element's children become
// the doc's members; repeated elements keep the last.
func decodeXMLDoc(body []byte) (*doc, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	var stack []*doc
	var root *doc
	tokens := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &FieldError{Msg: "malformed XML"}
		}
		tokens++
		if tokens > maxDocTokens {
			return nil, &FieldError{Msg: "request body has too many XML tokens"}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDocDepth {
				return nil, &FieldError{Msg: "request body is nested too deeply"}
			}
			d := &doc{kind: "text"}
			if len(stack) == 0 {
				if root != nil {
					return nil, &FieldError{Msg: "XML has more than one root element"}
				}
				root = d
				d.root = t.Name.Local
			} else {
				parent := stack[len(stack)-1]
				if parent.kids == nil {
					parent.kids = map[string]*doc{}
				}
				if parent.reps == nil {
					parent.reps = map[string][]*doc{}
				}
				parent.kind = "object"
				name := strings.ToLower(t.Name.Local)
				parent.kids[name] = d
				parent.reps[name] = append(parent.reps[name], d)
			}
			stack = append(stack, d)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, &FieldError{Msg: "malformed XML: text outside the root element"}
			}
		case xml.Directive:
			return nil, &FieldError{Msg: "XML directives (DOCTYPE) are not accepted"}
		}
	}
	if root == nil {
		return nil, &FieldError{Msg: "malformed XML: no root element"}
	}
	root.kind = "object"
	return root, nil
}

// checkRoot refuses an XML document whose root element is not name (any
// letter case, as member names; the namespace is not checked, as the
// vendor names none). A JSON document has no root to check.
func (d *doc) checkRoot(name string) error {
	if d.root == "" || strings.EqualFold(d.root, name) {
		return nil
	}
	return &FieldError{Msg: "the XML root element must be " + name}
}

// member returns the member named name (any case), or nil.
func (d *doc) member(name string) *doc {
	if d == nil {
		return nil
	}
	return d.kids[strings.ToLower(name)]
}

// str reads a string member; XML text counts as a string.
func (d *doc) str(name string) (string, error) {
	m := d.member(name)
	switch {
	case m == nil:
		return "", nil
	case m.kind == "string":
		return m.text, nil
	case m.kind == "text" && m.kids == nil:
		return strings.TrimSpace(m.text), nil
	}
	return "", &FieldError{Field: name, Msg: "must be a string"}
}

// integer reads an integer member given as a number or a string.
func (d *doc) integer(name string) (int, bool, error) {
	m := d.member(name)
	if m == nil {
		return 0, false, nil
	}
	if m.kind == "object" || m.kind == "array" || m.kind == "bool" {
		return 0, false, &FieldError{Field: name, Msg: "must be an integer"}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(m.text), 10, 32)
	if err != nil {
		return 0, false, &FieldError{Field: name, Msg: "must be an integer"}
	}
	return int(v), true, nil
}

// boolean reads a boolean member given as a boolean or a string.
func (d *doc) boolean(name string) (bool, error) {
	m := d.member(name)
	if m == nil {
		return false, nil
	}
	if m.kind != "object" && m.kind != "array" && m.kind != "number" {
		switch strings.TrimSpace(m.text) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, &FieldError{Field: name, Msg: "must be a boolean (true or false)"}
}

// object reads an object member.
func (d *doc) object(name string) (*doc, error) {
	m := d.member(name)
	if m == nil || m.kind == "object" {
		return m, nil
	}
	if m.kind == "text" && strings.TrimSpace(m.text) == "" {
		return &doc{kind: "object"}, nil // <user/> in XML
	}
	return nil, &FieldError{Field: name, Msg: "must be an object"}
}

// list reads an array member: a JSON array, or in XML the element
// repeated (each occurrence one item). Every item must be an object.
func (d *doc) list(name string) ([]*doc, error) {
	m := d.member(name)
	if m == nil {
		return nil, nil
	}
	items := m.items
	switch m.kind {
	case "array":
	case "object", "text":
		items = d.reps[strings.ToLower(name)]
		if items == nil { // an XML object without reps cannot happen; JSON objects are not lists
			return nil, &FieldError{Field: name, Msg: "must be an array"}
		}
	default:
		return nil, &FieldError{Field: name, Msg: "must be an array"}
	}
	for i, it := range items {
		emptyXML := it != nil && it.kind == "text" && strings.TrimSpace(it.text) == ""
		if it == nil || (it.kind != "object" && !emptyXML) {
			return nil, &FieldError{Field: name + "[" + strconv.Itoa(i) + "]", Msg: "must be an object"}
		}
	}
	return items, nil
}
