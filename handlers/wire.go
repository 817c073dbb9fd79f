package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

// This file holds what the families share on the wire: reading and
// decoding request bodies, the loose scalar types of the vendors' JSON,
// writing JSON answers, and the forms of values shown to clients
// (timestamps, Retry-After, masked destinations, redirect targets, session
// fields).

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
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
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
	if fe, ok := errors.AsType[*FieldError](err); ok {
		return fe
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
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
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
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

// RetryAfter is the value of a Retry-After header for a client that may
// try again at until: the seconds from now, rounded up, and at least 1.
func RetryAfter(until, now time.Time) string {
	s := int(until.Sub(now).Seconds() + 0.999)
	return strconv.Itoa(max(s, 1))
}

// MaskMail masks a mail address as a***@example.com, for showing where a
// code was sent.
func MaskMail(m string) string {
	at := strings.LastIndexByte(m, '@')
	if at <= 0 {
		return "***"
	}
	return m[:1] + "***" + m[at:]
}

// MaskPhone masks a phone number as ***-***-1234, for showing where a code
// was sent.
func MaskPhone(p string) string {
	var d []byte
	for i := len(p) - 1; i >= 0 && len(d) < 4; i-- {
		if p[i] >= '0' && p[i] <= '9' {
			d = append([]byte{p[i]}, d...)
		}
	}
	return "***-***-" + string(d)
}

// LoginRedirect returns loginURL with target added as the redirect query
// parameter, if target is a same-origin path.
func LoginRedirect(loginURL, target string) string {
	u, err := url.Parse(loginURL)
	if err != nil {
		return loginURL
	}
	if SafeRedirect(target) {
		q := u.Query()
		q.Set("redirect", target)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// SafeRedirect reports whether target is a same-origin redirect target: an
// absolute path with no scheme or host, and none of the forms that browsers
// read as another origin ("//host", "/\host", control characters).
func SafeRedirect(target string) bool {
	if target == "" || target[0] != '/' {
		return false
	}
	if len(target) > 1 && (target[1] == '/' || target[1] == '\\') {
		return false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(target)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil
}

// FieldValue returns the session field named f, as used by the gate's
// header_up and placeholders: user_id, login, group, status, id_store,
// auth_time, factors, session_index, or attr.<name>.
func FieldValue(s *state.Session, f string) string {
	switch f {
	case "user_id":
		return s.UserID
	case "login":
		if s.LoginName != "" {
			return s.LoginName
		}
		return s.UserID
	case "name":
		return s.DisplayName()
	case "group":
		return s.GroupName
	case "status":
		return string(s.Status)
	case "id_store":
		return s.IDStoreName
	case "auth_time":
		return Timestamp(s.AuthTime)
	case "factors":
		return strings.Join(s.Factors, ",")
	case "session_index":
		return s.Index
	}
	if name, ok := strings.CutPrefix(f, "attr."); ok {
		return s.UserAttributes[name]
	}
	return ""
}

// ValidField reports whether f is a name FieldValue knows.
func ValidField(f string) bool {
	switch f {
	case "user_id", "login", "name", "group", "status", "id_store", "auth_time", "factors", "session_index":
		return true
	}
	name, ok := strings.CutPrefix(f, "attr.")
	return ok && name != ""
}

// mediaJSON etc. name the encodings of a request body or an answer.
const (
	mediaJSON = "json"
	mediaXML  = "xml"
	mediaText = "text"
)

// mediaOf returns the encoding of the media type mt (lower case, no
// parameters), or "" when it is none of them: application/json and every
// +json type (application/vnd.api+json) are JSON; application/xml, text/xml
// and every +xml type are XML; text/plain is text.
func mediaOf(mt string) string {
	switch {
	case mt == "application/json", strings.HasSuffix(mt, "+json"):
		return mediaJSON
	case mt == "application/xml", mt == "text/xml", strings.HasSuffix(mt, "+xml"):
		return mediaXML
	case mt == "text/plain":
		return mediaText
	}
	return ""
}

// MediaError is a request whose Content-Type (Status 415) or Accept
// (Status 406) an endpoint cannot serve. Each family renders it in its own
// error shape.
type MediaError struct {
	Status int
	Msg    string
}

func (e *MediaError) Error() string { return e.Msg }

// hasBody reports whether r carries a body whose media type matters: a
// POST, PUT or PATCH with a body or an unknown length.
func hasBody(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return r.ContentLength != 0
	}
	return false
}

// requestMedia returns the encoding of r's body among those the endpoint
// reads (in), or a 415 MediaError. A body must name its media type: a body
// without Content-Type is refused like a text/plain one, since both are
// what a cross-site form or a no-CORS fetch can send. A request without a
// body reads as the first encoding.
func requestMedia(r *http.Request, in ...string) (string, *MediaError) {
	ct := r.Header.Get("Content-Type")
	if !hasBody(r) && ct == "" {
		return in[0], nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if m := mediaOf(mt); err == nil && slices.Contains(in, m) {
		return m, nil
	}
	return "", &MediaError{Status: http.StatusUnsupportedMediaType, Msg: "the request body must be " + mediaNames(in)}
}

// answerMedia picks the answer's encoding from r's Accept among those the
// endpoint writes (out; the first is the default and what wildcards get),
// or returns a 406 MediaError when Accept allows none of them. Entries
// with q=0 are skipped; otherwise the first acceptable entry wins.
func answerMedia(r *http.Request, out ...string) (string, *MediaError) {
	accept := strings.Join(r.Header.Values("Accept"), ",")
	if strings.TrimSpace(accept) == "" {
		return out[0], nil
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(q, 64); err != nil || v <= 0 {
				continue
			}
		}
		var m string
		switch mt {
		case "*/*":
			m = out[0]
		case "application/*":
			if i := slices.IndexFunc(out, func(m string) bool { return m != mediaText }); i >= 0 {
				m = out[i]
			}
		case "text/*":
			m = mediaText
		default:
			m = mediaOf(mt)
		}
		if m != "" && slices.Contains(out, m) {
			return m, nil
		}
	}
	return "", &MediaError{Status: http.StatusNotAcceptable, Msg: "answers are " + mediaNames(out) + "; the Accept header allows none of them"}
}

// negotiate checks both media types of r: the body's against in, the
// answer's against out. It returns the two encodings, or the first
// MediaError (406 before 415), with ans still usable for the error answer
// when only the request's type is wrong.
func negotiate(r *http.Request, in, out []string) (req, ans string, merr *MediaError) {
	if ans, merr = answerMedia(r, out...); merr != nil {
		return "", out[0], merr
	}
	if req, merr = requestMedia(r, in...); merr != nil {
		return "", ans, merr
	}
	return req, ans, nil
}

func mediaNames(ms []string) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		switch m {
		case mediaJSON:
			names[i] = "JSON"
		case mediaXML:
			names[i] = "XML"
		default:
			names[i] = "text/plain"
		}
	}
	return strings.Join(names, " or ")
}

// storeRetryAfter is the Retry-After (seconds) of a 503 for a store that
// cannot be reached.
const storeRetryAfter = "5"

// storeDown sets the Retry-After header of a 503 answered because the store
// cannot be reached or did not answer in time; the family then writes its
// error body.
func storeDown(w http.ResponseWriter) {
	w.Header().Set("Retry-After", storeRetryAfter)
}
