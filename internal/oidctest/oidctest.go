// Package oidctest runs a real OpenID Provider on loopback for tests: the
// op package of github.com/zitadel/oidc (an OpenID-certified
// implementation) over a small in-memory storage with test users, one
// confidential client, a plain HTML login form, key rotation, and logout
// tokens for back-channel logout signed with the provider's own key.
//
// The provider's protocol work (discovery, the authorization endpoint,
// PKCE, the code, the token endpoint, ID token signing, JWKS) is the
// library's; this package only stores what it asks to store and knobs the
// tests turn: expired ID tokens, tokens signed by a key the provider does
// not publish, a key rotation, ID tokens with a changed aud, azp or nonce
// (OverrideIDTokens).
package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// User is a test user of the provider.
type User struct {
	Sub           string
	Username      string
	Password      string
	Email         string
	EmailVerified bool
	Groups        []string
}

// Provider is a running OpenID Provider.
type Provider struct {
	// Issuer is http://127.0.0.1:<port>.
	Issuer       string
	ClientID     string
	ClientSecret string

	op  *op.Provider
	srv *http.Server

	mu              sync.Mutex
	users           map[string]User // by username
	redirectURIs    []string
	postLogoutURIs  []string
	keys            []*key // published; the last one signs
	rogue           *key   // when set, signs instead and is not published
	override        *IDTokenOverride
	idTokenLifetime time.Duration
	requests        map[string]*authRequest
	codes           map[string]string // code -> request id
	tokens          map[string]tokenInfo
	lastSID         map[string]string // sub -> sid of the last sign-in
	endSessions     int
}

type tokenInfo struct {
	sub, client string
	exp         time.Time
}

// Start starts a provider on a free 127.0.0.1 port with a client
// "authsession" and the given users, and stops it when the test ends.
func Start(t testing.TB, users ...User) *Provider {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("oidctest: listen: %v", err)
	}
	p := &Provider{
		Issuer: "http://" + l.Addr().String(), ClientID: "authsession", ClientSecret: randomString(),
		users: map[string]User{}, idTokenLifetime: 5 * time.Minute,
		requests: map[string]*authRequest{}, codes: map[string]string{}, tokens: map[string]tokenInfo{},
		lastSID: map[string]string{},
	}
	for _, u := range users {
		p.users[u.Username] = u
	}
	p.keys = []*key{newKey(t)}
	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	cfg := &op.Config{
		CryptoKey: cryptoKey, CryptoKeyId: "k", CodeMethodS256: true, AuthMethodPost: true,
		DefaultLogoutRedirectURI:   "/logged-out",
		BackChannelLogoutSupported: true, BackChannelLogoutSessionSupported: true,
	}
	prov, err := op.NewProvider(cfg, &storage{p}, op.StaticIssuer(p.Issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatalf("oidctest: provider: %v", err)
	}
	p.op = prov
	mux := http.NewServeMux()
	mux.HandleFunc("/login", p.login)
	mux.HandleFunc("/logged-out", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("signed out")) })
	mux.Handle("/", p.withOverride(prov))
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.srv.Shutdown(ctx)
	})
	return p
}

// AllowRedirect registers a redirect URI of the client.
func (p *Provider) AllowRedirect(uri string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.redirectURIs = append(p.redirectURIs, uri)
}

// AllowPostLogoutRedirect registers a post-logout redirect URI.
func (p *Provider) AllowPostLogoutRedirect(uri string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.postLogoutURIs = append(p.postLogoutURIs, uri)
}

// SetIDTokenLifetime sets the lifetime of the ID tokens issued from now
// on; a negative one issues tokens that have expired already.
func (p *Provider) SetIDTokenLifetime(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idTokenLifetime = d
}

// SignWithUnpublishedKey makes the provider sign its tokens with a key it
// does not publish (on) or with its own again (off): a token a relying
// party must refuse, whose claims are otherwise right.
func (p *Provider) SignWithUnpublishedKey(t testing.TB, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rogue = nil
	if on {
		p.rogue = newKey(t)
		// The same key id as the published key: only the signature
		// tells them apart.
		p.rogue.id = p.keys[len(p.keys)-1].id
	}
}

// RotateKey makes a new key the signing key; with keepOld the former keys
// stay published (as a provider does during a rotation), otherwise they
// are withdrawn.
func (p *Provider) RotateKey(t testing.TB, keepOld bool) {
	k := newKey(t)
	p.mu.Lock()
	defer p.mu.Unlock()
	if keepOld {
		p.keys = append(p.keys, k)
	} else {
		p.keys = []*key{k}
	}
}

// LastSID returns the session id (sid) of the last sign-in of sub.
func (p *Provider) LastSID(sub string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastSID[sub]
}

// EndSessions counts the calls of the end_session endpoint that reached
// the storage (RP-initiated logouts).
func (p *Provider) EndSessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.endSessions
}

// LogoutClaims shape a logout token; the zero value is a valid token for
// the client, issued now, with a fresh jti.
type LogoutClaims struct {
	Sub, SID string
	JTI      string
	IssuedAt time.Time
	// Nonce adds a nonce claim (forbidden in logout tokens).
	Nonce bool
	// NoEvent leaves out the back-channel logout event.
	NoEvent bool
	// Audience replaces the client id as the audience.
	Audience string
}

// LogoutToken returns a logout token signed with the provider's current
// signing key, as the provider's back-channel logout would send it.
func (p *Provider) LogoutToken(t testing.TB, c LogoutClaims) string {
	t.Helper()
	now := time.Now()
	if c.IssuedAt.IsZero() {
		c.IssuedAt = now
	}
	if c.JTI == "" {
		c.JTI = randomString()
	}
	aud := p.ClientID
	if c.Audience != "" {
		aud = c.Audience
	}
	claims := oidc.NewLogoutTokenClaims(p.Issuer, c.Sub, oidc.Audience{aud}, now.Add(2*time.Minute), c.JTI, c.SID, 0)
	claims.IssuedAt = oidc.FromTime(c.IssuedAt)
	if c.NoEvent {
		claims.Events = map[string]any{"http://example.com/other-event": struct{}{}}
	}
	if c.Nonce {
		claims.Claims = map[string]any{"nonce": randomString()}
	}
	p.mu.Lock()
	k := p.signingKey()
	p.mu.Unlock()
	signer, err := op.SignerFromKey(signer{k})
	if err != nil {
		t.Fatalf("oidctest: signer: %v", err)
	}
	payload, err := claims.MarshalJSON()
	if err != nil {
		t.Fatalf("oidctest: logout token: %v", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatalf("oidctest: sign: %v", err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatalf("oidctest: serialize: %v", err)
	}
	return s
}

// signingKey is the key tokens are signed with now (p.mu held).
func (p *Provider) signingKey() *key {
	if p.rogue != nil {
		return p.rogue
	}
	return p.keys[len(p.keys)-1]
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><title>Test provider</title></head><body>
<h1>Test provider sign-in</h1>
{{if .Error}}<p id="error">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<label>Username <input type="text" id="username" name="username"></label>
<label>Password <input type="password" id="password" name="password"></label>
<button type="submit" id="submit" name="action" value="login">Sign in</button>
<button type="submit" id="cancel" name="action" value="cancel">Cancel</button>
</form></body></html>`))

// login is the provider's login UI: a form, then the request marked done
// and the browser sent back to the library's callback, which issues the
// code. Cancel answers the client with access_denied.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id := r.FormValue("id")
	p.mu.Lock()
	req, ok := p.requests[id]
	p.mu.Unlock()
	if !ok {
		http.Error(w, "unknown auth request", http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost {
		_ = loginPage.Execute(w, map[string]string{"ID": id})
		return
	}
	if r.FormValue("action") == "cancel" {
		op.AuthRequestError(w, r, req, oidc.ErrAccessDenied().WithDescription("the user cancelled the sign-in"), p.op)
		return
	}
	p.mu.Lock()
	u, ok := p.users[r.FormValue("username")]
	ok = ok && u.Password == r.FormValue("password")
	if ok {
		req.sub, req.done, req.authTime, req.sid = u.Sub, true, time.Now(), randomString()
		p.lastSID[u.Sub] = req.sid
	}
	p.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		_ = loginPage.Execute(w, map[string]string{"ID": id, "Error": "wrong username or password"})
		return
	}
	http.Redirect(w, r, op.AuthCallbackURL(p.op)(op.ContextWithIssuer(r.Context(), p.Issuer), id), http.StatusFound)
}

// key is an RS256 signing key.
type key struct {
	id  string
	pri *rsa.PrivateKey
}

func newKey(t testing.TB) *key {
	pri, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("oidctest: key: %v", err)
	}
	return &key{id: randomString()[:12], pri: pri}
}

func (k *key) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *key) Algorithm() jose.SignatureAlgorithm          { return jose.RS256 }
func (k *key) ID() string                                  { return k.id }
func (k *key) Use() string                                 { return "sig" }

// pub wraps k as its public key for the key set.
type pub struct{ *key }

func (k pub) Key() any { return &k.pri.PublicKey }

// signer wraps k as the signing key.
type signer struct{ *key }

func (k signer) Key() any { return k.pri }

func randomString() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// errNotFound is what the storage answers for what it does not hold.
var errNotFound = errors.New("not found")

func fmtErr(what string) error { return fmt.Errorf("oidctest: %s: %w", what, errNotFound) }
