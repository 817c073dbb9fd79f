package portal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/authsession/caddy-authsession/state"
)

// The portal's CSRF protection is a signed double submit bound to the
// browser's session: a random value in an HttpOnly cookie (<name>_csrf,
// scoped to the portal's prefix, or to / for a __Host- cookie name), and
// in every form the HMAC, under the server's CSRF key, of that value and of
// the key of the browser's session cookie (state.KeyOf of its id; nothing
// when the browser has no well-formed session cookie). A cross-site page
// can neither read the cookies nor compute the HMAC, so it cannot forge
// the form field. A cookie and token pair minted by another browser (an
// attacker's, planted e.g. from a sibling subdomain) does not fit the
// victim's session either, since the attacker does not know the victim's
// session id. Whenever the portal rotates or clears the session cookie it
// signs the forms it renders afterwards for the new cookie (see
// setRequestCookie).
//
// Forms whose Origin header names another origin (scheme, host and port)
// are refused too; see sameOrigin for the expected scheme.

const csrfField = "csrf"

func (p *Portal) csrfCookieName() string { return p.Cookie.Name + "_csrf" }

// csrfToken returns the token for the forms of the page being rendered,
// setting the CSRF cookie first if the browser has none.
func (p *Portal) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(p.csrfCookieName()); err == nil && len(c.Value) == 43 {
		return p.csrfSign(r, c.Value)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("authsession: crypto/rand failed: " + err.Error())
	}
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, p.cookie(p.csrfCookieName(), v, p.Prefix, 0))
	// Forms rendered later in this same response need the new value.
	setRequestCookie(r, p.csrfCookieName(), v)
	return p.csrfSign(r, v)
}

// csrfSign returns the token for the CSRF cookie value v in the browser
// of r: the HMAC of v and of the key of r's session cookie.
func (p *Portal) csrfSign(r *http.Request, v string) string {
	m := hmac.New(sha256.New, p.CSRFKey)
	m.Write([]byte("authsession portal csrf v2\x00"))
	m.Write([]byte(v))
	m.Write([]byte{0})
	if c, err := r.Cookie(p.Cookie.Name); err == nil && state.ValidateID(c.Value) == nil {
		k := state.KeyOf(c.Value)
		m.Write(k[:])
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF reports whether the parsed form r carries the token of its
// CSRF cookie and session cookie and, if the browser sent an Origin, comes
// from this origin.
func (p *Portal) checkCSRF(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && !p.sameOrigin(r, o) {
		return false
	}
	c, err := r.Cookie(p.csrfCookieName())
	if err != nil || c.Value == "" {
		return false
	}
	got := r.PostFormValue(csrfField)
	return got != "" && hmac.Equal([]byte(got), []byte(p.csrfSign(r, c.Value)))
}

// sameOrigin reports whether the Origin header o names the origin the
// browser sent r to: same scheme, host (case-insensitive) and port (the
// scheme's default when absent). The expected scheme is https when r came
// over TLS or when the session cookie is Secure (the default: the browser
// only holds the cookies over https, so a plain-http r means TLS ends in
// front of Caddy); http only for a plain-http request with the cookie
// block's insecure.
func (p *Portal) sameOrigin(r *http.Request, o string) bool {
	u, err := url.Parse(o)
	if err != nil || u.Opaque != "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	scheme := "https"
	if r.TLS == nil && p.Cookie.Insecure {
		scheme = "http"
	}
	if !strings.EqualFold(u.Scheme, scheme) || u.Host == "" {
		return false
	}
	return hostPort(u.Host, scheme) == hostPort(r.Host, scheme)
}

// hostPort returns h (host or host:port) lower-cased with its port, the
// scheme's default when it has none.
func hostPort(h, scheme string) string {
	h = strings.ToLower(h)
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		host, port = strings.Trim(h, "[]"), ""
	}
	if port == "" {
		port = "443"
		if scheme == "http" {
			port = "80"
		}
	}
	return net.JoinHostPort(host, port)
}

// setRequestCookie replaces (or, with value "", removes) the cookie name
// among r's cookies, so that what the portal renders later in the same
// response (CSRF tokens) sees the cookie it has just set.
func setRequestCookie(r *http.Request, name, value string) {
	var b strings.Builder
	for _, c := range r.Cookies() {
		if c.Name == name {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c.Name + "=" + c.Value)
	}
	if value != "" {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(name + "=" + value)
	}
	r.Header.Del("Cookie")
	if b.Len() > 0 {
		r.Header.Set("Cookie", b.String())
	}
}
