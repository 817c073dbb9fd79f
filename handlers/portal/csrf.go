package portal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
)

// The portal's CSRF protection is a signed double submit: a random value
// in an HttpOnly cookie scoped to the portal's prefix, and in every form
// the HMAC of that value under the server's CSRF key. A cross-site page
// can neither read the cookie nor compute the HMAC, so it cannot forge the
// form field; a forged cookie (e.g. from a sibling subdomain) does not
// carry a valid HMAC either. Forms whose Origin header names another host
// are refused too.

const csrfField = "csrf"

func (p *Portal) csrfCookieName() string { return p.Cookie.Name + "_csrf" }

// csrfToken returns the token for the forms of the page being rendered,
// setting the CSRF cookie first if the browser has none.
func (p *Portal) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(p.csrfCookieName()); err == nil && len(c.Value) == 43 {
		return p.csrfSign(c.Value)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("authsession: crypto/rand failed: " + err.Error())
	}
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // G124: Secure unless the cookie block says insecure (plain-HTTP development)
		Name: p.csrfCookieName(), Value: v, Path: p.Prefix, Domain: p.Cookie.Domain,
		HttpOnly: true, Secure: !p.Cookie.Insecure, SameSite: http.SameSiteLaxMode,
	})
	// Forms rendered later in this same response need the new value.
	r.AddCookie(&http.Cookie{Name: p.csrfCookieName(), Value: v}) //nolint:gosec // G124: a request cookie, never sent
	return p.csrfSign(v)
}

func (p *Portal) csrfSign(v string) string {
	m := hmac.New(sha256.New, p.CSRFKey)
	m.Write([]byte("authsession portal csrf\x00"))
	m.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF reports whether the parsed form r carries the token of its
// CSRF cookie and, if the browser sent an Origin, comes from this host.
func (p *Portal) checkCSRF(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	c, err := r.Cookie(p.csrfCookieName())
	if err != nil || c.Value == "" {
		return false
	}
	got := r.PostFormValue(csrfField)
	return got != "" && hmac.Equal([]byte(got), []byte(p.csrfSign(c.Value)))
}
