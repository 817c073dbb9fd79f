package state

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// SealKeySize is the size of a Sealer key: AES-256.
const SealKeySize = 32

// Sealer seals session ids with AES-256-GCM so that a stored record can
// carry the id of its session without holding it in the clear. The session's
// Key is the additional data, so a sealed id cannot be moved to another record.
type Sealer struct{ aead cipher.AEAD }

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != SealKeySize {
		return nil, fmt.Errorf("seal key must be %d bytes, got %d", SealKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// NewSealKey returns a fresh random key.
func NewSealKey() []byte {
	k := make([]byte, SealKeySize)
	_, _ = rand.Read(k)
	return k
}

// Seal returns id sealed for the record stored under KeyOf(id).
func (s *Sealer) Seal(id string) []byte {
	key := KeyOf(id)
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(id)+s.aead.Overhead())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, []byte(id), key[:])
}

// Open returns the id sealed in sealed for the record under key.
func (s *Sealer) Open(key Key, sealed []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return "", errors.New("sealed id too short")
	}
	id, err := s.aead.Open(nil, sealed[:n], sealed[n:], key[:])
	if err != nil {
		return "", errors.New("sealed id does not open with this key")
	}
	return string(id), nil
}
