// Package webauthntest is a software WebAuthn authenticator for tests: it
// makes real ES256 credentials, "none" attestations and signed assertions
// in the WebAuthn JSON serialisation (base64url members), as a browser
// would hand them to the relying party. Every part a relying party checks
// can be set: the origin, the RP id, the flags and the signature counter,
// so tests can make wrong answers on purpose.
package webauthntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// Authenticator data flags (WebAuthn §6.1).
const (
	FlagUserPresent    byte = 0x01
	FlagUserVerified   byte = 0x04
	FlagBackupEligible byte = 0x08
	FlagBackupState    byte = 0x10
	FlagAttestedData   byte = 0x40
)

var b64 = base64.RawURLEncoding

// Authenticator holds one credential. The zero value is not usable: call
// New.
type Authenticator struct {
	// Origin is the origin the "browser" puts in the client data.
	Origin string
	// RPID is the relying party id whose hash is put in the authenticator
	// data.
	RPID string
	// Flags are the authenticator data flags of the next answers. Default
	// (set by New): user present and user verified.
	Flags byte
	// SignCount is the counter of the next assertion; each Assert adds
	// one first (set it lower to act as a clone).
	SignCount uint32
	// UserHandle is returned in assertions (a discoverable credential).
	UserHandle []byte
	// AAGUID is the model id reported at registration.
	AAGUID [16]byte

	ID  []byte
	key *ecdsa.PrivateKey
}

// New returns an authenticator with a fresh P-256 credential for the
// relying party rpID at origin.
func New(origin, rpID string) *Authenticator {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	a := &Authenticator{Origin: origin, RPID: rpID, Flags: FlagUserPresent | FlagUserVerified, ID: id, key: key}
	copy(a.AAGUID[:], "authsession-test")
	return a
}

// CredentialID returns the credential id, base64url.
func (a *Authenticator) CredentialID() string { return b64.EncodeToString(a.ID) }

// Options is the part of PublicKeyCredentialCreationOptions or
// PublicKeyCredentialRequestOptions the authenticator reads: the
// challenge, and the user id at registration.
type Options struct {
	Challenge string `json:"challenge"`
	RPID      string `json:"rpId"`
	User      struct {
		ID string `json:"id"`
	} `json:"user"`
	AllowCredentials []struct {
		ID string `json:"id"`
	} `json:"allowCredentials"`
}

// ParseOptions reads options given as JSON, either bare or wrapped in
// {"publicKey": ...} (the shape of navigator.credentials arguments).
func ParseOptions(js []byte) (Options, error) {
	var wrapped struct {
		PublicKey *Options `json:"publicKey"`
	}
	if err := json.Unmarshal(js, &wrapped); err == nil && wrapped.PublicKey != nil && wrapped.PublicKey.Challenge != "" {
		return *wrapped.PublicKey, nil
	}
	var o Options
	if err := json.Unmarshal(js, &o); err != nil {
		return o, err
	}
	if o.Challenge == "" {
		return o, errors.New("webauthntest: options without a challenge")
	}
	return o, nil
}

func (a *Authenticator) clientData(typ, challenge string) []byte {
	cd, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return cd
}

func (a *Authenticator) authData(flags byte, count uint32, attested []byte) []byte {
	rp := sha256.Sum256([]byte(a.RPID))
	out := append([]byte{}, rp[:]...)
	out = append(out, flags)
	out = binary.BigEndian.AppendUint32(out, count)
	return append(out, attested...)
}

// coseKey is the credential's public key as a COSE_Key (EC2, ES256).
func (a *Authenticator) coseKey() []byte {
	pub, err := a.key.PublicKey.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		panic(err)
	}
	k, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pub[1:33], -3: pub[33:65]})
	if err != nil {
		panic(err)
	}
	return k
}

// Register answers a registration: the PublicKeyCredential JSON of a new
// credential with a "none" attestation, for the creation options (JSON).
// The user id of the options becomes the user handle of later assertions.
func (a *Authenticator) Register(options []byte) ([]byte, error) {
	o, err := ParseOptions(options)
	if err != nil {
		return nil, err
	}
	if o.User.ID != "" {
		if a.UserHandle, err = b64.DecodeString(o.User.ID); err != nil {
			return nil, fmt.Errorf("webauthntest: user.id: %w", err)
		}
	}
	attested := append([]byte{}, a.AAGUID[:]...)
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(a.ID)))
	attested = append(attested, a.ID...)
	attested = append(attested, a.coseKey()...)
	ad := a.authData(a.Flags|FlagAttestedData, a.SignCount, attested)
	obj, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad})
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": a.CredentialID(), "rawId": a.CredentialID(), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(a.clientData("webauthn.create", o.Challenge)),
			"attestationObject": b64.EncodeToString(obj),
			"transports":        []string{"internal"},
		},
	})
}

// Assert answers an assertion for the request options (JSON): the
// PublicKeyCredential JSON signed with the credential's key, with the
// counter one past SignCount.
func (a *Authenticator) Assert(options []byte) ([]byte, error) {
	o, err := ParseOptions(options)
	if err != nil {
		return nil, err
	}
	return a.AssertChallenge(o.Challenge), nil
}

// AssertChallenge answers an assertion for the challenge (base64url).
func (a *Authenticator) AssertChallenge(challenge string) []byte {
	a.SignCount++
	ad := a.authData(a.Flags, a.SignCount, nil)
	cd := a.clientData("webauthn.get", challenge)
	cdh := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		panic(err)
	}
	resp := map[string]any{
		"clientDataJSON":    b64.EncodeToString(cd),
		"authenticatorData": b64.EncodeToString(ad),
		"signature":         b64.EncodeToString(sig),
	}
	if a.UserHandle != nil {
		resp["userHandle"] = b64.EncodeToString(a.UserHandle)
	}
	out, _ := json.Marshal(map[string]any{
		"id": a.CredentialID(), "rawId": a.CredentialID(), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": resp,
	})
	return out
}

// Clone returns an authenticator holding the same credential and
// counter (a cloned key).
func (a *Authenticator) Clone() *Authenticator {
	c := *a
	c.UserHandle = append([]byte(nil), a.UserHandle...)
	return &c
}
