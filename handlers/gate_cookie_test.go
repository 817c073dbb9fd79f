package handlers

import (
	"net/http"
	"strings"
	"testing"
)

// cookieName is a configured cookie name: a valid token.
const cookieName = "authsession"

func TestCookieValue(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  string
		ok    bool
	}{
		{nil, "", false},
		{[]string{"authsession=abc"}, "abc", true},
		{[]string{"theme=dark; authsession=abc; x=y"}, "abc", true},
		{[]string{"  authsession = abc  "}, " abc", true}, // as net/http: the value keeps its leading blank
		{[]string{`authsession="abc"`}, "abc", true},
		{[]string{`authsession="`}, "", false},
		{[]string{"authsession=a\\b; authsession=second"}, "second", true},
		{[]string{"theme=dark", "authsession=from-line-2"}, "from-line-2", true},
		{[]string{"authsessionx=abc; xauthsession=abc"}, "", false},
		{[]string{"authsession"}, "", true},
	} {
		h := http.Header{"Cookie": tc.lines}
		got, ok := cookieValue(h, cookieName)
		if got != tc.want || ok != tc.ok {
			t.Errorf("cookieValue(%q) = %q, %v; want %q, %v", tc.lines, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzCookieValue checks that cookieValue finds what net/http's
// Request.Cookie finds, for any Cookie header.
func FuzzCookieValue(f *testing.F) {
	for _, s := range []string{
		"authsession=abc", `a=1; authsession="q"; b=2`, " ; ;authsession=\x7f;authsession=ok",
		"authsession=a b", "authsession==x", "\tauthsession\t=\tv\t", `authsession=""`, "authsession=\"x",
		"theme=dark; authsession=abc", " ; a=1 ;; authsession=x ; ", "a=1; authsession=x; b=2", "x=authsession; authsession=y",
		"authsession=x; ref=authsession", "\v; authsession=x;\u00a0", "authsession=x;;", "a=authsession=1; authsession=2",
	} {
		f.Add(s, "")
		f.Add(s, "authsession=second")
	}
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		h := http.Header{"Cookie": {line1}}
		if line2 != "" {
			h["Cookie"] = append(h["Cookie"], line2)
		}
		if strings.Count(line1+line2, ";") > 2000 {
			t.Skip("net/http refuses requests with that many cookies")
		}
		got, ok := cookieValue(h, cookieName)
		r := &http.Request{Header: h}
		c, err := r.Cookie(cookieName)
		if (err == nil) != ok || (ok && c.Value != got) {
			t.Fatalf("cookieValue = %q, %v; net/http: %v, %v", got, ok, c, err)
		}
		// The gate's one-pass scan of a single line finds the same value,
		// and the line it leaves holds no session cookie.
		sc := scanCookieLine(line1, cookieName)
		want, wantOK := cookieValue(http.Header{"Cookie": {line1}}, cookieName)
		if sc.valid != wantOK || sc.value != want {
			t.Fatalf("scanCookieLine = %q, %v; cookieValue %q, %v", sc.value, sc.valid, want, wantOK)
		}
		// The fast path, where it applies, reads the line as the cookie
		// by cookie scan does, up to blanks that without trims.
		slow := cookieLine{line: line1, first: -1, last: -1}
		slow.scanParts(cookieName)
		if sc.found != slow.found || sc.valid != slow.valid || sc.value != slow.value {
			t.Fatalf("scan found %v, %v, %q; cookie by cookie %v, %v, %q", sc.found, sc.valid, sc.value, slow.found, slow.valid, slow.value)
		}
		kept, changed := sc.without(cookieName)
		if k, c := slow.without(cookieName); k != kept || c != changed {
			t.Fatalf("scan leaves %q, %v; cookie by cookie %q, %v", kept, changed, k, c)
		}
		if changed != sc.found {
			t.Fatalf("without changed=%v, found=%v", changed, sc.found)
		}
		if again := scanCookieLine(kept, cookieName); again.found {
			t.Fatalf("the line without the session cookie %q still has one", kept)
		}
		if !changed && kept != line1 {
			t.Fatalf("a line without the session cookie changed: %q", kept)
		}
	})
}

func TestCookieValueDoesNotAllocate(t *testing.T) {
	h := http.Header{"Cookie": {"theme=dark; authsession=0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"}}
	if n := testing.AllocsPerRun(100, func() { _, _ = cookieValue(h, cookieName) }); n != 0 {
		t.Errorf("cookieValue allocates %v times per call, want 0", n)
	}
}

// TestWithoutCookie: the session cookie leaves the Cookie line wherever it
// stands, the others stay in order, and a line without it is untouched.
func TestWithoutCookie(t *testing.T) {
	for _, tt := range []struct{ line, want string }{
		{"authsession=abc", ""},
		{"theme=dark; authsession=abc", "theme=dark"},
		{"authsession=abc; theme=dark", "theme=dark"},
		{"a=1; authsession=abc; b=2", "a=1; b=2"},
		{"a=1;authsession=abc;authsession=def; b=2; c=3", "a=1; b=2; c=3"},
		{"a=1; b=2; authsession=x", "a=1; b=2"},
		{" authsession=x ; a=1 ; b=2 ", "a=1 ; b=2"},
		{"authsessionX=1; a=2", "authsessionX=1; a=2"},
	} {
		if got, _ := withoutCookie(tt.line, "authsession"); got != tt.want {
			t.Errorf("withoutCookie(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
	if got, changed := withoutCookie("a=1; b=2", "authsession"); changed || got != "a=1; b=2" {
		t.Errorf("a line without the cookie changed: %q", got)
	}
}

// TestValidCookieValueEveryByte: the eight-bytes-at-a-time test agrees with
// the byte table for every byte value at every position of values of every
// length up to two words and three bytes (shorter than a word, whole
// words, a tail read as an overlapping last word), alone and followed by a
// second bad byte (which must not move the first one validPrefix finds).
func TestValidCookieValueEveryByte(t *testing.T) {
	for n := 1; n <= 19; n++ {
		testValidPrefixEveryByte(t, "abcdefghijklmnopqrs"[:n])
	}
}

func testValidPrefixEveryByte(t *testing.T, clean string) {
	for b := range 256 {
		for pos := range len(clean) {
			for _, after := range []int{-1, 0x00, 0x7f, 0xff, ';', ' '} {
				v := []byte(clean)
				v[pos] = byte(b)
				if after >= 0 && pos+1 < len(v) {
					v[pos+1] = byte(after)
				}
				want := len(v)
				for i, c := range v {
					if !cookieOctets[c] {
						want = i
						break
					}
				}
				if got := validPrefix(string(v)); got != want {
					t.Fatalf("validPrefix(%q) = %d, want %d", v, got, want)
				}
				if got := validCookieValue(string(v)); got != (want == len(v)) {
					t.Fatalf("validCookieValue(%q) = %v", v, got)
				}
			}
		}
	}
}
