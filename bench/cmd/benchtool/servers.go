package main

import (
	"flag"
	"net/http"
	"time"

	"github.com/authsession/caddy-authsession/bench"
)

// runAuthSvc serves a minimal external auth service for Caddy's
// forward_auth, as Authelia- or oauth2-proxy-style gates work: it looks the
// session cookie up in an in-memory map of the same n benchmark sessions
// and answers 200 with X-Auth-User, or 401.
func runAuthSvc(args []string) error {
	fs := flag.NewFlagSet("authsvc", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback address to listen on")
	n := fs.Int("n", 1000, "number of sessions known")
	cookie := fs.String("cookie", "authsession", "session cookie name")
	_ = fs.Parse(args)
	if err := loopbackOnly(*addr); err != nil {
		return err
	}
	sessions := make(map[string]string, *n)
	for i := range *n {
		sessions[bench.SessionID(i)] = bench.UserID(i)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(*cookie); err == nil {
			if user, ok := sessions[c.Value]; ok {
				w.Header().Set("X-Auth-User", user)
				w.WriteHeader(http.StatusOK)
				return
			}
		}
		w.WriteHeader(http.StatusUnauthorized)
	})
	return serve(*addr, h)
}

func serve(addr string, h http.Handler) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}
