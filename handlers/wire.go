package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// MaxBody is the largest request body any API accepts (64 KiB).
const MaxBody = 64 << 10

// ErrTooLarge is returned by ReadBody for a body over MaxBody.
var ErrTooLarge = errors.New("request body larger than 64 KiB")

// ReadBody reads at most MaxBody bytes of r's body, returning ErrTooLarge
// without reading further when the body is longer.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxBody {
		return nil, ErrTooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, ErrTooLarge
		}
		return nil, fmt.Errorf("reading request body: %w", err)
	}
	return b, nil
}

// FieldError is a decoding or validation error attributed to one field.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// DecodeJSON decodes body into v and turns encoding/json's errors into a
// FieldError that names the offending field without echoing its value.
func DecodeJSON(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return &FieldError{Msg: "request body is empty"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return jsonFieldError(err)
	}
	if dec.More() {
		return &FieldError{Msg: "request body has data after the JSON value"}
	}
	return nil
}

func jsonFieldError(err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.String()
		switch te.Type.Kind().String() {
		case "string":
			want = "a string"
		case "bool":
			want = "a boolean"
		case "int", "int64", "int32":
			want = "an integer"
		case "map", "struct":
			want = "an object"
		case "slice":
			want = "an array"
		}
		return &FieldError{Field: te.Field, Msg: "must be " + want + ", not " + te.Value}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &FieldError{Msg: fmt.Sprintf("malformed JSON at offset %d", se.Offset)}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &FieldError{Msg: "malformed JSON: unexpected end of input"}
	}
	return &FieldError{Msg: "malformed JSON"}
}

// LooseBool accepts a JSON boolean or its string form ("true", "false"), as
// the vendors' own examples send. It always encodes as a boolean.
type LooseBool bool

// UnmarshalJSON implements json.Unmarshaler.
func (b *LooseBool) UnmarshalJSON(data []byte) error {
	s := string(data)
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal(data, &s); err != nil {
			return typeError("string", false)
		}
	}
	if b.UnmarshalText([]byte(s)) != nil {
		return typeError(kindOf(data), false)
	}
	return nil
}

// UnmarshalText implements encoding.TextUnmarshaler (XML and strings).
func (b *LooseBool) UnmarshalText(t []byte) error {
	switch strings.TrimSpace(string(t)) {
	case "true":
		*b = true
	case "false":
		*b = false
	default:
		return &FieldError{Msg: "must be a boolean (true or false)"}
	}
	return nil
}

// LooseInt accepts a JSON integer or its string form ("999").
type LooseInt int

// UnmarshalJSON implements json.Unmarshaler.
func (n *LooseInt) UnmarshalJSON(data []byte) error {
	s := string(data)
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal(data, &s); err != nil {
			return typeError("string", 0)
		}
	}
	if n.UnmarshalText([]byte(s)) != nil {
		return typeError(kindOf(data), 0)
	}
	return nil
}

// UnmarshalText implements encoding.TextUnmarshaler (XML and strings).
func (n *LooseInt) UnmarshalText(t []byte) error {
	v, err := strconv.ParseInt(strings.TrimSpace(string(t)), 10, 32)
	if err != nil {
		return &FieldError{Msg: "must be an integer"}
	}
	*n = LooseInt(v)
	return nil
}

// typeError reports a JSON value of the wrong kind; encoding/json adds the
// field's path to it, so the answer can name the field.
func typeError(got string, want any) error {
	return &json.UnmarshalTypeError{Value: got, Type: reflect.TypeOf(want)}
}

// kindOf names the kind of a raw JSON value, never its content.
func kindOf(data []byte) string {
	switch {
	case len(data) == 0:
		return "nothing"
	case data[0] == '"':
		return "another string"
	case data[0] == '{':
		return "object"
	case data[0] == '[':
		return "array"
	case data[0] == 't' || data[0] == 'f':
		return "bool"
	case data[0] == 'n':
		return "null"
	}
	return "number"
}

// Timestamp formats t as RFC 3339 in UTC, the wire form of every family.
func Timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// WriteJSON writes v as JSON with the given status and content type
// (application/json when ct is empty).
func WriteJSON(w http.ResponseWriter, status int, ct string, v any) {
	if ct == "" {
		ct = "application/json"
	}
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding response", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
