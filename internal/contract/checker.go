package contract

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
)

// total counts the pairs checked by every Checker of the test binary.
var total atomic.Int64

// Total returns how many request/answer pairs the test binary has checked.
func Total() int64 { return total.Load() }

// Pair is one checked exchange, as the divergence matchers see it.
type Pair struct {
	Match      *Match
	Method     string
	Path       string
	ReqHeader  http.Header
	ReqBody    []byte
	Status     int
	RespHeader http.Header
	RespBody   []byte
	// Panicked is set when the handler panicked: a client would see its
	// connection dropped.
	Panicked bool
	// ReqErr is why the document refuses the request ("" if it accepts it).
	ReqErr string
}

// Checker checks the exchanges of one test and fails it on a mismatch.
type Checker struct {
	t     testing.TB
	specs []*Spec
	off   bool

	mu      sync.Mutex
	pairs   int
	known   map[string]int
	failure []string
}

// New returns a Checker for t; at the end of t it logs how many pairs it
// checked. Under a fuzzing run (-test.fuzz), or for a *testing.F (whose
// methods may not be called from a fuzz target), it checks nothing: the
// fuzzers' seed corpora go through the plain test run's checkers instead.
func New(t testing.TB) *Checker {
	t.Helper()
	if _, isF := t.(*testing.F); isF || fuzzing() {
		return &Checker{t: t, off: true}
	}
	specs, err := Specs()
	if err != nil {
		t.Fatalf("contract: %v", err)
	}
	c := &Checker{t: t, specs: specs, known: map[string]int{}}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.pairs > 0 {
			t.Logf("contract: %d request/response pairs checked against docs/openapi (%d known divergences seen)", c.pairs, sumValues(c.known))
		}
	})
	return c
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Pairs returns how many pairs c has checked.
func (c *Checker) Pairs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pairs
}

// Failures returns the mismatches c reported (for tests of the checker).
func (c *Checker) Failures() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.failure)
}

// Handler wraps h so that every exchange with a documented path is checked.
func (c *Checker) Handler(h http.Handler) http.Handler {
	if c.off {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		panicked := func() (p bool) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						p = true
						return
					}
					c.t.Logf("contract: handler panicked: %v", v)
					p = true
				}
			}()
			h.ServeHTTP(rec, r)
			return false
		}()
		c.check(r, body, rec.Code, rec.Header(), rec.Body.Bytes(), panicked)
		if panicked {
			panic(http.ErrAbortHandler) // drop the connection, as net/http does
		}
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// Transport wraps rt (http.DefaultTransport when nil) so that every
// exchange with a documented path is checked.
func (c *Checker) Transport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	if c.off {
		return rt
	}
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		var body []byte
		if r.Body != nil {
			body, _ = io.ReadAll(r.Body)
			_ = r.Body.Close()
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		resp, err := rt.RoundTrip(r)
		if err != nil {
			c.check(r, body, 0, nil, nil, true)
			return resp, err
		}
		rb, rerr := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(rb))
		c.check(r, body, resp.StatusCode, resp.Header, rb, rerr != nil)
		return resp, err
	})
}

// fuzzing reports whether the test binary runs a fuzzer.
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// check checks one exchange; a mismatch fails the test unless a known
// divergence explains it. The rules:
//
//   - the answer's status is documented for the operation, its headers and
//     body match the document (media type included);
//   - a request the document refuses is answered with a 4xx, never a 2xx
//     (nor a 5xx, nor a dropped connection);
//   - no answer is a 5xx other than the documented store and delivery
//     failures, and no connection is dropped;
//   - a 2xx is in a media type the request's Accept allows, JSON when it
//     allows anything;
//   - a method the document does not list for a path answers 405 with an
//     Allow header naming exactly the documented methods.
func (c *Checker) check(r *http.Request, reqBody []byte, status int, header http.Header, body []byte, dropped bool) {
	m := Find(c.specs, r.Method, r.URL.Path)
	if m == nil || r.Method == http.MethodHead || r.Method == http.MethodOptions {
		return
	}
	p := Pair{
		Match: m, Method: r.Method, Path: r.URL.Path, ReqHeader: r.Header.Clone(), ReqBody: reqBody,
		Status: status, RespHeader: header, RespBody: body, Panicked: dropped,
	}
	if p.RespHeader == nil {
		p.RespHeader = http.Header{}
	}
	if m.Route != nil {
		p.ReqErr = requestError(m, r, reqBody)
	}
	problems := exchangeProblems(&p)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.pairs++
	total.Add(1)
	for _, prob := range problems {
		if d := KnownDivergence(&p, prob); d != "" {
			c.known[d]++
			c.t.Logf("contract: known divergence %q: %s %s → %d: %s", d, p.Method, p.Path, p.Status, prob)
			continue
		}
		msg := fmt.Sprintf("contract: %s %s (%s %s) → %s: %s", p.Method, p.Path, m.Spec.Name, describe(m), statusText(p.Status), prob)
		c.failure = append(c.failure, msg)
		c.t.Errorf("%s\n  request body: %.300s\n  answer body: %.300s", msg, reqBody, body)
	}
}

func describe(m *Match) string {
	if m.Route == nil {
		return m.Path + " (method not documented)"
	}
	return m.OperationID()
}

// exchangeProblems lists what is wrong with p by the rules of check.
func exchangeProblems(p *Pair) []string {
	m := p.Match
	if p.Panicked {
		return []string{"the connection was dropped (the handler panicked or the answer was cut)"}
	}
	if m.Route == nil {
		var probs []string
		if p.Status != http.StatusMethodNotAllowed {
			probs = append(probs, fmt.Sprintf("undocumented method answered %d, want 405", p.Status))
		}
		want := strings.Join(Methods(m.Item), ", ")
		if got := normalizeAllow(p.RespHeader.Get("Allow")); got != want {
			probs = append(probs, fmt.Sprintf("405 Allow header is %q, want %q", p.RespHeader.Get("Allow"), want))
		}
		return probs
	}
	var probs []string
	if err := responseError(p); err != "" {
		probs = append(probs, err)
	}
	switch {
	case p.ReqErr != "" && p.Status < 300:
		probs = append(probs, "a request the document refuses was answered "+statusText(p.Status)+": "+p.ReqErr)
	case p.ReqErr != "" && p.Status >= 500:
		probs = append(probs, "a request the document refuses was answered with a server error: "+p.ReqErr)
	}
	if p.Status >= 200 && p.Status < 300 && len(p.RespBody) > 0 {
		if prob := negotiationProblem(p); prob != "" {
			probs = append(probs, prob)
		}
	}
	return probs
}

func normalizeAllow(v string) string {
	var ms []string
	for m := range strings.SplitSeq(v, ",") {
		if m = strings.ToUpper(strings.TrimSpace(m)); m != "" {
			ms = append(ms, m)
		}
	}
	slices.Sort(ms)
	return strings.Join(ms, ", ")
}

var filterOptions = &openapi3filter.Options{
	AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
	IncludeResponseStatus: true,
	MultiError:            false,
}

// requestError validates the request against its operation; "" if valid.
func requestError(m *Match, r *http.Request, body []byte) string {
	req := r.Clone(context.Background())
	if len(bytes.TrimSpace(body)) > 0 && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json") // every family's default
	}
	if rb := m.Route.Operation.RequestBody; rb != nil && rb.Value != nil {
		if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err == nil && strings.HasSuffix(mt, "json") {
			if media := rb.Value.Content.Get(mt); media != nil && media.Schema != nil {
				body = normalizeJSON(body, media.Schema.Value)
			}
		}
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: m.Params, Route: m.Route, Options: filterOptions}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		return oneLine(err)
	}
	return ""
}

// responseError validates the answer against its operation; "" if valid.
func responseError(p *Pair) string {
	req, _ := http.NewRequest(p.Method, p.Path, nil)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: p.Match.Params, Route: p.Match.Route, Options: filterOptions},
		Status:                 p.Status,
		Header:                 p.RespHeader,
		Options:                filterOptions,
	}
	in.SetBodyBytes(p.RespBody)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return "answer does not match the document: " + oneLine(err)
	}
	// A documented answer without content must have no body.
	if ref := p.Match.Route.Operation.Responses.Status(p.Status); ref != nil && ref.Value != nil &&
		len(ref.Value.Content) == 0 && len(bytes.TrimSpace(p.RespBody)) > 0 {
		return "answer has a body; the document says it has none"
	}
	return ""
}

func oneLine(err error) string {
	var re *openapi3filter.RequestError
	s := err.Error()
	if errors.As(err, &re) && re.Err != nil {
		s = re.Error()
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

// negotiationProblem checks a 2xx answer's media type against Accept.
func negotiationProblem(p *Pair) string {
	got, _, _ := mime.ParseMediaType(p.RespHeader.Get("Content-Type"))
	accept := strings.TrimSpace(p.ReqHeader.Get("Accept"))
	offered := p.Match.Route.Operation.Responses.Status(p.Status)
	jsonOffered := offered != nil && offered.Value != nil && offered.Value.Content.Get("application/json") != nil
	if accept == "" || accept == "*/*" {
		if jsonOffered && got != "application/json" {
			return fmt.Sprintf("answer is %s; with no preference in Accept (%q) JSON is the default", got, accept)
		}
		return ""
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || params["q"] == "0" {
			continue
		}
		if mt == "*/*" || mt == got || (strings.HasSuffix(mt, "/*") && strings.HasPrefix(got, strings.TrimSuffix(mt, "*"))) {
			return ""
		}
		if (mt == "application/xml" || mt == "text/xml") && (got == "application/xml" || got == "text/xml") {
			return ""
		}
	}
	return fmt.Sprintf("answer is %s, which Accept %q does not allow", got, accept)
}
