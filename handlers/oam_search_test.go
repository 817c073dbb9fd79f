package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

func TestOAMSearch(t *testing.T) {
	f := newOAM(t)
	a1 := f.create(`{"userId":"alice","clientIp":"10.0.0.1","userAttributes":{"mail":{"attrValue":"a@example.com"}}}`)
	f.clk.Advance(time.Minute)
	a2 := f.create(`{"userId":"alice","clientIp":"10.0.0.2","isImpersonating":true,"idStoreName":"LDAP"}`)
	f.clk.Advance(time.Minute)
	b1 := f.create(`{"userId":"bob","clientIp":"10.0.0.1"}`)

	tests := []struct {
		name  string
		query string
		body  string
		want  []string
	}{
		{"everything", "", "", []string{a1.SessionID, a2.SessionID, b1.SessionID}},
		{"empty body object", "", `{}`, []string{a1.SessionID, a2.SessionID, b1.SessionID}},
		{"userId in the query", "userId=alice", "", []string{a1.SessionID, a2.SessionID}},
		{"userId in the body", "", `{"userId":"bob"}`, []string{b1.SessionID}},
		{"query wins over body", "userId=bob", `{"userId":"alice"}`, []string{b1.SessionID}},
		{"sessionId in the query", "sessionId=" + url.QueryEscape(a2.SessionID), "", []string{a2.SessionID}},
		{"sessionId in the body", "", `{"sessionId":"` + a1.SessionID + `"}`, []string{a1.SessionID}},
		{"idStore in the query", "idStore=LDAP", "", []string{a2.SessionID}},
		{"idStoreName in the body", "", `{"idStoreName":"UserIdentityStore1"}`, []string{a1.SessionID, b1.SessionID}},
		{"clientIp", "", `{"clientIp":"10.0.0.1"}`, []string{a1.SessionID, b1.SessionID}},
		{"isImpersonating as a string", "", `{"isImpersonating":"true"}`, []string{a2.SessionID}},
		{"isImpersonating false", "", `{"isImpersonating":false}`, []string{a1.SessionID, b1.SessionID}},
		{"userAttributes", "", `{"userAttributes":{"mail":{"attrName":"mail","attrValue":"a@example.com"}}}`, []string{a1.SessionID}},
		{"createTime at or after", "", `{"createTime":"2026-11-22T10:01:00Z"}`, []string{a2.SessionID, b1.SessionID}},
		{"several filters", "userId=alice", `{"clientIp":"10.0.0.1","createTime":"2026-11-22T10:00:00Z"}`, []string{a1.SessionID}},
		{"paging accepted and ignored", "", `{"userId":"alice","fromIndex":"5","pageSize":1}`, []string{a1.SessionID, a2.SessionID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/sessions"
			if tt.query != "" {
				path += "?" + tt.query
			}
			w := f.do("POST", path, tt.body)
			if w.Code != http.StatusOK {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			res := decode[searchJSON](t, w)
			if res.TotalRecords == nil || *res.TotalRecords != len(tt.want) {
				t.Fatalf("totalRecords = %v, want %d", res.TotalRecords, len(tt.want))
			}
			var got []string
			for _, s := range res.Sessions.SessionData {
				got = append(got, s.SessionID)
			}
			// Oldest first, with the ids in the clear.
			if !slices.Equal(got, tt.want) {
				t.Fatalf("found %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOAMSearchNothingFound(t *testing.T) {
	f := newOAM(t)
	f.create(`{"userId":"alice"}`)
	for _, tt := range []struct{ query, body string }{
		{"userId=nobody", ""},
		{"", `{"clientIp":"192.0.2.1"}`},
		{"sessionId=unknown", ""},
		{"", `{"createTime":"2026-11-23T00:00:00Z"}`},
	} {
		path := "/sessions"
		if tt.query != "" {
			path += "?" + tt.query
		}
		assertError(t, f.do("POST", path, tt.body), http.StatusNotFound, "")
	}
	// Expired sessions are not found.
	f.clk.Advance(time.Hour)
	assertError(t, f.do("POST", "/sessions?userId=alice", ""), http.StatusNotFound, "")
}

func TestOAMSearchCapsAt28(t *testing.T) {
	f := newOAM(t)
	var first []string
	for i := range 30 {
		s := f.create(fmt.Sprintf(`{"userId":"u%d","clientIp":"10.0.0.1"}`, i%3))
		if i < 28 {
			first = append(first, s.SessionID)
		}
		f.clk.Advance(time.Second)
	}
	for _, path := range []string{"/sessions", "/sessions?idStore=UserIdentityStore1"} {
		w := f.do("POST", path, `{"clientIp":"10.0.0.1"}`)
		if w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		res := decode[searchJSON](t, w)
		if *res.TotalRecords != 30 || len(res.Sessions.SessionData) != 28 {
			t.Fatalf("totalRecords %d with %d entries, want 30 with 28", *res.TotalRecords, len(res.Sessions.SessionData))
		}
		if got := ids(res.Sessions.SessionData); !slices.Equal(got, sorted(first)) {
			t.Fatalf("the 28 entries are not the 28 oldest sessions")
		}
	}
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func TestOAMSearchBadInput(t *testing.T) {
	f := newOAM(t)
	f.create(`{"userId":"alice"}`)
	before := f.snapshot()
	for _, tt := range []struct{ body, field string }{
		{`{"createTime":"yesterday"}`, "createTime"},
		{`{"updateTime":"2026-11-22"}`, "updateTime"},
		{`{"lastAccessTime":5}`, "lastAccessTime"},
		{`{"expiryTime":"x"}`, "expiryTime"},
		{`{"userId":7}`, "userId"},
		{`{"isImpersonating":"maybe"}`, "isImpersonating"},
		{`{"pageSize":"ten"}`, "pageSize"},
		{`{"fromIndex":1.5}`, "fromIndex"},
		{`{"userAttributes":"mail"}`, "userAttributes"},
		{`{"userId":"alice"`, ""},
		{`[1,2]`, ""},
	} {
		assertError(t, f.do("POST", "/sessions", tt.body), http.StatusBadRequest, tt.field)
	}
	f.assertUnchanged(before)
}

// TestOAMSearchIsDeterministic: sessions created within the same second
// (the wire's precision) come back in one stable order, so the 28 shown
// are the same every time.
func TestOAMSearchIsDeterministic(t *testing.T) {
	f := newOAM(t)
	for range 40 {
		f.create(`{"userId":"alice"}`)
	}
	var first []string
	for i := range 10 {
		for _, path := range []string{"/sessions", "/sessions?userId=alice"} {
			w := f.do("POST", path, "")
			res := decode[searchJSON](t, w)
			var got []string
			for _, s := range res.Sessions.SessionData {
				got = append(got, s.SessionIndex)
			}
			if !slices.IsSorted(got) {
				t.Fatalf("%s: sessions of the same second are not ordered by sessionIndex", path)
			}
			if i == 0 && first == nil {
				first = got
			} else if !slices.Equal(got, first) {
				t.Fatalf("%s, call %d: a different answer to the same search", path, i)
			}
		}
	}
}

// TestOAMSearchAfterSealKeyChange: a session sealed under a former key is
// still found, without its id, and the log says so without the id.
func TestOAMSearchAfterSealKeyChange(t *testing.T) {
	f := newOAM(t)
	a := f.create(`{"userId":"alice"}`)
	other, err := state.NewSealer(state.NewSealKey())
	if err != nil {
		t.Fatal(err)
	}
	f.env.Sealer = other
	w := f.do("POST", "/sessions?userId=alice", "")
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	res := decode[searchJSON](t, w)
	if len(res.Sessions.SessionData) != 1 || res.Sessions.SessionData[0].SessionID != "" ||
		res.Sessions.SessionData[0].SessionIndex != a.SessionIndex {
		t.Fatalf("answer %+v", res.Sessions.SessionData)
	}
	warned := false
	for _, e := range f.logs.All() {
		if e.Message == "cannot open sealed session id" {
			warned = true
		}
		for _, v := range e.ContextMap() {
			if s, ok := v.(string); ok && strings.Contains(s, a.SessionID) {
				t.Errorf("log line %q shows the session id", e.Message)
			}
		}
	}
	if !warned {
		t.Error("no warning about the unopenable id")
	}
}
