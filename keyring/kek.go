package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// KEK is a key-encryption key: it wraps and unwraps the tenants' data and
// index keys and never sees a column's value. info binds a wrapped key to
// the tenant, kind and version it was made for, so a wrapped key copied
// into another row does not unwrap.
type KEK interface {
	// ID names the key that Wrap uses; it is stored beside each wrapped
	// key and handed back to Unwrap.
	ID() string
	// Wrap encrypts key under the KEK.
	Wrap(ctx context.Context, key []byte, info string) ([]byte, error)
	// Unwrap decrypts a key that the KEK named kekID wrapped. It fails
	// with ErrWrongKEK when this KEK cannot be that one or the wrapped
	// bytes do not authenticate.
	Unwrap(ctx context.Context, kekID string, wrapped []byte, info string) ([]byte, error)
}

// ErrWrongKEK means a wrapped key does not open with the configured KEK:
// the configuration names another key, or the row was tampered with.
// Nothing is decrypted then; the keyring fails closed.
var ErrWrongKEK = errors.New("keyring: wrapped key does not open with the configured key-encryption key")

// LocalKEK is a KEK held in the process's configuration (CAREBOOK_KEK):
// for a laptop, tests, and deployments without a KMS.
type LocalKEK struct {
	id   string
	aead cipher.AEAD
}

// NewLocalKEK takes a 32-byte key (AES-256-GCM).
func NewLocalKEK(key []byte) (*LocalKEK, error) {
	if len(key) != 32 {
		return nil, errors.New("keyring: the local key-encryption key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	// The ID is a fingerprint, not the key: it tells which local key
	// wrapped a row (so a wrong CAREBOOK_KEK is named as such) and reveals
	// nothing that helps to find the key.
	sum := sha256.Sum256(append([]byte("carebook kek id\x00"), key...))
	return &LocalKEK{id: "local:" + hex.EncodeToString(sum[:8]), aead: aead}, nil
}

// ID implements KEK.
func (k *LocalKEK) ID() string { return k.id }

// Wrap implements KEK: nonce‖AES-GCM(key) with info as associated data.
func (k *LocalKEK) Wrap(_ context.Context, key []byte, info string) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return k.aead.Seal(nonce, nonce, key, []byte(info)), nil
}

// Unwrap implements KEK.
func (k *LocalKEK) Unwrap(_ context.Context, kekID string, wrapped []byte, info string) ([]byte, error) {
	if kekID != k.id {
		return nil, fmt.Errorf("%w (wrapped by %s, configured %s)", ErrWrongKEK, kekID, k.id)
	}
	n := k.aead.NonceSize()
	if len(wrapped) < n {
		return nil, ErrWrongKEK
	}
	key, err := k.aead.Open(nil, wrapped[:n], wrapped[n:], []byte(info))
	if err != nil {
		return nil, ErrWrongKEK
	}
	return key, nil
}
