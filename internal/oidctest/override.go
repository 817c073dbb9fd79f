package oidctest

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// IDTokenOverride changes the ID tokens the token endpoint issues: the
// library makes the token as always, then its claims are changed and it
// is signed again with the provider's real signing key, so only the
// changed claims are wrong. The zero value changes nothing.
type IDTokenOverride struct {
	// ExtraAudience is added to the aud claim after the client id.
	ExtraAudience string
	// AZP replaces the azp claim (the authorized party).
	AZP string
	// Nonce replaces the nonce claim.
	Nonce string
	// AuthTime, if not zero, replaces the auth_time claim (a provider that
	// reused an older sign-in of its own).
	AuthTime time.Time
}

// OverrideIDTokens makes the token endpoint issue ID tokens changed by o
// from now on; nil issues them unchanged again.
func (p *Provider) OverrideIDTokens(o *IDTokenOverride) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.override = o
}

// withOverride wraps the library's handler: when an override is set, the
// token endpoint's answer has its id_token changed and signed again.
func (p *Provider) withOverride(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		o := p.override
		p.mu.Unlock()
		if o == nil || r.URL.Path != "/oauth/token" {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			if b, err := p.rewriteTokenResponse(body, o); err == nil {
				body = b
			} else {
				rec.Code, body = http.StatusInternalServerError, []byte("oidctest: override: "+err.Error())
			}
		}
		maps.Copy(w.Header(), rec.Header())
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// rewriteTokenResponse changes the id_token of a token response.
func (p *Provider) rewriteTokenResponse(body []byte, o *IDTokenOverride) ([]byte, error) {
	var resp map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&resp); err != nil {
		return nil, err
	}
	raw, _ := resp["id_token"].(string)
	if raw == "" {
		return body, nil
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	dec = json.NewDecoder(bytes.NewReader(jws.UnsafePayloadWithoutVerification()))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return nil, err
	}
	if o.ExtraAudience != "" {
		claims["aud"] = []string{p.ClientID, o.ExtraAudience}
	}
	if o.AZP != "" {
		claims["azp"] = o.AZP
	}
	if o.Nonce != "" {
		claims["nonce"] = o.Nonce
	}
	if !o.AuthTime.IsZero() {
		claims["auth_time"] = o.AuthTime.Unix()
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	k := p.signingKey()
	p.mu.Unlock()
	s, err := op.SignerFromKey(signer{k})
	if err != nil {
		return nil, err
	}
	obj, err := s.Sign(payload)
	if err != nil {
		return nil, err
	}
	if resp["id_token"], err = obj.CompactSerialize(); err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}

// AddUser adds a user to a running provider (or replaces the one with the
// same username).
func (p *Provider) AddUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[u.Username] = u
}
