package main

import (
	"strings"
	"testing"
)

// TestShareOf counts a handler's own samples: those under it but not under
// the next handler's call, by what it called.
func TestShareOf(t *testing.T) {
	const gate = "caddymodule.(*Gate).ServeHTTP"
	in := `
	  4a1 crypto/sha256.Sum256
	  4a2 handlers.(*Gate).Decide
	  4a3 github.com/x/caddymodule.(*Gate).ServeHTTP
	  4a4 net/http.(*conn).serve

	  5b1 caddyhttp.StaticResponse.ServeHTTP
	  5b2 caddyhttp.HandlerFunc.ServeHTTP
	  5b3 github.com/x/caddymodule.(*Gate).ServeHTTP
	  5b4 net/http.(*conn).serve

	  6c1 github.com/x/caddymodule.(*Gate).ServeHTTP
	  6c2 net/http.(*conn).serve

	  7d1 runtime.mallocgc
	  7d2 net/http.(*conn).serve

	  8e1 handlers.(*Gate).Decide
	  8e2 github.com/x/caddymodule.(*Gate).ServeHTTP
	  8e3 net/http.(*conn).serve
	  ffffffff81000000
`
	sh, err := shareOf(strings.NewReader(in), gate, "HandlerFunc.ServeHTTP")
	if err != nil {
		t.Fatal(err)
	}
	if sh.total != 5 || sh.own != 3 {
		t.Fatalf("total %d own %d, want 5 and 3", sh.total, sh.own)
	}
	if sh.callees["handlers.(*Gate).Decide"] != 2 || sh.callees["(self)"] != 1 || len(sh.callees) != 2 {
		t.Fatalf("callees %v", sh.callees)
	}
}
