package handlers

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/authsession/caddy-authsession/state"
)

// PasskeyConfig is the relying party's configuration (the Caddyfile's
// webauthn block).
type PasskeyConfig struct {
	// RPID is the relying party id: the site's host or a registrable
	// suffix of it.
	RPID string
	// RPName is shown by the browser when a passkey is made. Default:
	// RPID.
	RPName string
	// Origins are the origins (scheme://host[:port]) the pages are served
	// on; each host must be RPID or under it.
	Origins []string
	// UserVerification is "required" or "preferred" (default).
	UserVerification string
	// Passwordless lets a discoverable passkey be the whole sign-in.
	Passwordless bool
}

// Check reports a configuration a browser would refuse.
func (c PasskeyConfig) Check() error {
	if c.RPID == "" {
		return errors.New("webauthn: rp_id is required")
	}
	if err := protocol.ValidateRPID(c.RPID); err != nil || strings.Contains(c.RPID, ":") || strings.Contains(c.RPID, "/") {
		return fmt.Errorf("webauthn: rp_id %q is not a domain name (no scheme, port or IP address)", c.RPID)
	}
	if len(c.Origins) == 0 {
		return errors.New("webauthn: at least one origin is required")
	}
	rp := strings.ToLower(c.RPID)
	for _, o := range c.Origins {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("webauthn: origin %q is not scheme://host[:port]", o)
		}
		host := strings.ToLower(u.Hostname())
		local := host == "localhost" || host == "127.0.0.1" || host == "::1"
		switch {
		case u.Scheme == "https":
		case u.Scheme == "http" && local:
		default:
			return fmt.Errorf("webauthn: origin %q must be https (http only on localhost)", o)
		}
		if host != rp && !strings.HasSuffix(host, "."+rp) {
			return fmt.Errorf("webauthn: rp_id %q is not the host of origin %q nor a suffix of it", c.RPID, o)
		}
	}
	switch c.UserVerification {
	case "", "preferred", "required":
	default:
		return fmt.Errorf("webauthn: user_verification must be required or preferred, not %q", c.UserVerification)
	}
	return nil
}

// Passkeys runs the WebAuthn ceremonies of a relying party; the
// credentials and the ceremonies in flight live in the per-user state of
// the store (state.Passkey, state.Ceremony).
type Passkeys struct {
	Config PasskeyConfig
	rp     *webauthn.WebAuthn
	uv     protocol.UserVerificationRequirement
}

// Ceremony kinds.
const (
	CeremonyLogin    = "login"
	CeremonyRegister = "register"
)

// Errors of the ceremonies (the caller counts them as wrong answers).
var (
	ErrPasskeyAssertion = errors.New("the passkey's answer does not verify")
	ErrNoPasskey        = errors.New("the user has no passkey")
)

// NewPasskeys checks c and returns the relying party.
func NewPasskeys(c PasskeyConfig) (*Passkeys, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	if c.RPName == "" {
		c.RPName = c.RPID
	}
	uv := protocol.VerificationPreferred
	if c.UserVerification == "required" {
		uv = protocol.VerificationRequired
	}
	rp, err := webauthn.New(&webauthn.Config{
		RPID:                  c.RPID,
		RPDisplayName:         c.RPName,
		RPOrigins:             c.Origins,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: uv,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: state.CeremonyTTL, TimeoutUVD: state.CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: state.CeremonyTTL, TimeoutUVD: state.CeremonyTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn: %w", err)
	}
	return &Passkeys{Config: c, rp: rp, uv: uv}, nil
}

// passkeyUser is a user as the WebAuthn library sees it. Its user handle
// is the canonical user key, so a discoverable login finds the user's
// state from the handle alone.
type passkeyUser struct {
	key, name string
	creds     []webauthn.Credential
}

func (u *passkeyUser) WebAuthnID() []byte                         { return []byte(u.key) }
func (u *passkeyUser) WebAuthnName() string                       { return u.name }
func (u *passkeyUser) WebAuthnDisplayName() string                { return u.name }
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// maxUserHandle is WebAuthn's bound on a user handle.
const maxUserHandle = 64

func newPasskeyUser(key, name string, u *state.UserState) (*passkeyUser, error) {
	if key == "" || len(key) > maxUserHandle {
		return nil, fmt.Errorf("a user key of %d bytes cannot be a passkey's user handle (1 to %d)", len(key), maxUserHandle)
	}
	pu := &passkeyUser{key: key, name: name}
	if u != nil {
		for _, p := range u.Passkeys {
			pu.creds = append(pu.creds, credentialOf(p))
		}
	}
	return pu, nil
}

func credentialOf(p state.Passkey) webauthn.Credential {
	c := webauthn.Credential{
		ID: p.ID, PublicKey: p.PublicKey, AttestationType: p.AttestationType,
		Flags: webauthn.CredentialFlags{
			UserPresent: true, UserVerified: p.UserVerified,
			BackupEligible: p.BackupEligible, BackupState: p.BackupState,
		},
		Authenticator: webauthn.Authenticator{AAGUID: p.AAGUID, SignCount: p.SignCount},
	}
	for _, t := range p.Transports {
		c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
	}
	return c
}

// CeremonyBinding is the binding of a ceremony to the secret that started
// it (a session key, a correlationId): a SHA-256 of it, so the state never
// holds the secret itself.
func CeremonyBinding(secret string) string {
	sum := sha256.Sum256([]byte("authsession-webauthn\x00" + secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// NewCeremonyID returns a random ceremony id.
func NewCeremonyID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("authsession: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// BeginLogin starts an assertion for the user under key, whose state is u,
// limited to the user's passkeys. It returns the
// PublicKeyCredentialRequestOptions (WebAuthn JSON) and the ceremony to
// keep (state.UserState.StartCeremony) under binding.
func (p *Passkeys) BeginLogin(key, name string, u *state.UserState, binding string) ([]byte, state.Ceremony, error) {
	pu, err := newPasskeyUser(key, name, u)
	if err != nil {
		return nil, state.Ceremony{}, err
	}
	if len(pu.creds) == 0 {
		return nil, state.Ceremony{}, ErrNoPasskey
	}
	opts, sd, err := p.rp.BeginLogin(pu, webauthn.WithUserVerification(p.uv))
	if err != nil {
		return nil, state.Ceremony{}, err
	}
	return p.ceremony(CeremonyLogin, opts.Response, sd, binding)
}

// BeginDiscoverableLogin starts an assertion for any discoverable passkey
// (no user named yet).
func (p *Passkeys) BeginDiscoverableLogin(binding string) ([]byte, state.Ceremony, error) {
	opts, sd, err := p.rp.BeginDiscoverableLogin(webauthn.WithUserVerification(p.uv))
	if err != nil {
		return nil, state.Ceremony{}, err
	}
	return p.ceremony(CeremonyLogin, opts.Response, sd, binding)
}

func (p *Passkeys) ceremony(kind string, options any, sd *webauthn.SessionData, binding string) ([]byte, state.Ceremony, error) {
	js, err := json.Marshal(options)
	if err != nil {
		return nil, state.Ceremony{}, err
	}
	data, err := json.Marshal(sd)
	if err != nil {
		return nil, state.Ceremony{}, err
	}
	return js, state.Ceremony{Kind: kind, Binding: binding, Data: data}, nil
}

// PasskeyUse is a verified assertion.
type PasskeyUse struct {
	// CredentialID is the passkey used.
	CredentialID []byte
	// UserHandle is the user handle the authenticator returned (a
	// discoverable login): the user key.
	UserHandle string
}

// ParseAssertion parses a PublicKeyCredential JSON (an assertion). The
// user handle it carries names the user of a discoverable login.
func ParseAssertion(answer []byte) (*protocol.ParsedCredentialAssertionData, error) {
	pa, err := protocol.ParseCredentialRequestResponseBytes(answer)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrPasskeyAssertion, protocolDetail(err))
	}
	return pa, nil
}

// FinishLogin checks the assertion pa against the ceremony ceremonyID of
// u (the user under key), taking the ceremony (single use) whatever the
// outcome, and records the passkey's new counter. Call it inside
// Store.UpdateUser and write the state even when it fails: the ceremony
// is spent. Errors: state.ErrNoCeremony (expired, replayed or another
// session's), ErrPasskeyAssertion (signature, challenge, origin, RP id,
// flags, credential not the user's), state.ErrSignCount (a cloned
// authenticator).
func (p *Passkeys) FinishLogin(key string, u *state.UserState, ceremonyID, binding string, pa *protocol.ParsedCredentialAssertionData, now time.Time) (PasskeyUse, error) {
	c, err := u.TakeCeremony(ceremonyID, CeremonyLogin, binding, now)
	if err != nil {
		return PasskeyUse{}, err
	}
	return p.VerifyLogin(key, u, c, pa, now)
}

// VerifyLogin is FinishLogin for a ceremony already taken (a discoverable
// login keeps its ceremony with the browser's session, not the user's):
// it checks pa against c for the user under key and records the use in u.
func (p *Passkeys) VerifyLogin(key string, u *state.UserState, c state.Ceremony, pa *protocol.ParsedCredentialAssertionData, now time.Time) (PasskeyUse, error) {
	if c.Kind != CeremonyLogin || !now.Before(c.Expires) {
		return PasskeyUse{}, state.ErrNoCeremony
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(c.Data, &sd); err != nil {
		return PasskeyUse{}, fmt.Errorf("%w: ceremony data unreadable", ErrPasskeyAssertion)
	}
	pu, err := newPasskeyUser(key, key, u)
	if err != nil {
		return PasskeyUse{}, err
	}
	if u.PasskeyIndex(pa.RawID) < 0 {
		return PasskeyUse{}, fmt.Errorf("%w: the credential is not one of this user's passkeys", ErrPasskeyAssertion)
	}
	if len(pa.Response.UserHandle) > 0 && !bytes.Equal(pa.Response.UserHandle, []byte(key)) {
		return PasskeyUse{}, fmt.Errorf("%w: the user handle is not this user's", ErrPasskeyAssertion)
	}
	var cred *webauthn.Credential
	if len(sd.UserID) == 0 { // a discoverable login: the handle names the user
		if len(pa.Response.UserHandle) == 0 {
			return PasskeyUse{}, fmt.Errorf("%w: a passkey without a user handle cannot sign in alone", ErrPasskeyAssertion)
		}
		cred, err = p.rp.ValidateDiscoverableLogin(func(_, _ []byte) (webauthn.User, error) { return pu, nil }, sd, pa)
	} else {
		cred, err = p.rp.ValidateLogin(pu, sd, pa)
	}
	if err != nil {
		return PasskeyUse{}, fmt.Errorf("%w: %s", ErrPasskeyAssertion, protocolDetail(err))
	}
	f := pa.Response.AuthenticatorData.Flags
	if err := u.UsePasskey(cred.ID, pa.Response.AuthenticatorData.Counter, f.HasUserVerified(), f.HasBackupEligible(), f.HasBackupState(), now); err != nil {
		return PasskeyUse{}, err
	}
	return PasskeyUse{CredentialID: cred.ID, UserHandle: string(pa.Response.UserHandle)}, nil
}

// BeginRegistration starts the registration of a new passkey named name
// for the user under key (state u): the PublicKeyCredentialCreationOptions
// (WebAuthn JSON, wrapped as {"publicKey": ...}) and the ceremony to keep.
// The user's passkeys are excluded (the authenticator refuses to make a
// second one) and a discoverable credential is asked for.
func (p *Passkeys) BeginRegistration(key, display string, u *state.UserState, name, binding string) ([]byte, state.Ceremony, error) {
	pu, err := newPasskeyUser(key, display, u)
	if err != nil {
		return nil, state.Ceremony{}, err
	}
	if len(u.Passkeys) >= state.MaxPasskeys {
		return nil, state.Ceremony{}, state.ErrTooManyPasskeys
	}
	opts, sd, err := p.rp.BeginRegistration(pu,
		webauthn.WithExclusions(webauthn.Credentials(pu.creds).CredentialDescriptors()),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: p.uv,
		}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
	if err != nil {
		return nil, state.Ceremony{}, err
	}
	js, c, err := p.ceremony(CeremonyRegister, opts.Response, sd, binding)
	c.Name = name
	return js, c, err
}

// FinishRegistration checks the attestation answer (PublicKeyCredential
// JSON) against the ceremony ceremonyID of u and adds the new passkey to
// u. Like FinishLogin, the ceremony is spent whatever the outcome.
func (p *Passkeys) FinishRegistration(key, display string, u *state.UserState, ceremonyID, binding string, answer []byte, now time.Time) (state.Passkey, error) {
	c, err := u.TakeCeremony(ceremonyID, CeremonyRegister, binding, now)
	if err != nil {
		return state.Passkey{}, err
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(c.Data, &sd); err != nil {
		return state.Passkey{}, errors.New("ceremony data unreadable")
	}
	pcc, err := protocol.ParseCredentialCreationResponseBytes(answer)
	if err != nil {
		return state.Passkey{}, fmt.Errorf("the passkey's registration does not parse: %s", protocolDetail(err))
	}
	pu, err := newPasskeyUser(key, display, u)
	if err != nil {
		return state.Passkey{}, err
	}
	cred, err := p.rp.CreateCredential(pu, sd, pcc)
	if err != nil {
		return state.Passkey{}, fmt.Errorf("the passkey's registration does not verify: %s", protocolDetail(err))
	}
	pk := state.Passkey{
		ID: cred.ID, PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount,
		AAGUID: cred.Authenticator.AAGUID, AttestationType: cred.AttestationType,
		UserVerified: cred.Flags.UserVerified, BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState,
		Name: c.Name, Created: now,
	}
	for _, t := range cred.Transport {
		pk.Transports = append(pk.Transports, string(t))
	}
	if err := u.AddPasskey(pk); err != nil {
		return state.Passkey{}, err
	}
	return pk, nil
}

// protocolDetail returns the library's description of err, details
// included.
func protocolDetail(err error) string {
	if pe, ok := errors.AsType[*protocol.Error](err); ok {
		if pe.DevInfo != "" {
			return pe.Details + " (" + pe.DevInfo + ")"
		}
		return pe.Details
	}
	return err.Error()
}
