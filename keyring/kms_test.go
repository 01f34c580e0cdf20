package keyring_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/carebook/carebook/keyring"
)

// fakeKMS speaks the two operations of KMS's JSON protocol (awsJson1_1,
// target TrentService.*) that KMSKEK uses, with keys of its own: a
// ciphertext blob names its key and is sealed with the encryption context
// as associated data, as KMS's are. It records what it was sent.
type fakeKMS struct {
	mu       sync.Mutex
	keys     map[string]cipher.AEAD
	targets  []string
	unsigned int
	contexts []map[string]string
}

func newFakeKMS(keyIDs ...string) *fakeKMS {
	f := &fakeKMS{keys: map[string]cipher.AEAD{}}
	for _, id := range keyIDs {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		block, _ := aes.NewCipher(k)
		f.keys[id], _ = cipher.NewGCM(block)
	}
	return f
}

type kmsRequest struct {
	KeyId             string
	Plaintext         []byte
	CiphertextBlob    []byte
	EncryptionContext map[string]string
}

func contextAD(c map[string]string) []byte {
	names := make([]string, 0, len(c))
	for k := range c {
		names = append(names, k)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, k := range names {
		b.WriteString(k + "=" + c[k] + "\x00")
	}
	return b.Bytes()
}

func (f *fakeKMS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	target := r.Header.Get("X-Amz-Target")
	f.targets = append(f.targets, target)
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		f.unsigned++
	}
	var req kmsRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, "ValidationException", err.Error())
		return
	}
	f.contexts = append(f.contexts, req.EncryptionContext)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch target {
	case "TrentService.Encrypt":
		aead, ok := f.keys[req.KeyId]
		if !ok {
			fail(w, "NotFoundException", "no such key")
			return
		}
		nonce := make([]byte, aead.NonceSize())
		_, _ = rand.Read(nonce)
		blob := append([]byte{byte(len(req.KeyId))}, req.KeyId...)
		blob = append(blob, nonce...)
		blob = aead.Seal(blob, nonce, req.Plaintext, contextAD(req.EncryptionContext))
		_ = json.NewEncoder(w).Encode(map[string]any{"CiphertextBlob": blob, "KeyId": "arn:aws:kms:us-east-1:111122223333:key/" + req.KeyId,
			"EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
	case "TrentService.Decrypt":
		if len(req.CiphertextBlob) < 1 || len(req.CiphertextBlob) < 1+int(req.CiphertextBlob[0]) {
			fail(w, "InvalidCiphertextException", "")
			return
		}
		n := int(req.CiphertextBlob[0])
		id, rest := string(req.CiphertextBlob[1:1+n]), req.CiphertextBlob[1+n:]
		if req.KeyId != "" && req.KeyId != id {
			fail(w, "IncorrectKeyException", "")
			return
		}
		aead := f.keys[id]
		if aead == nil || len(rest) < aead.NonceSize() {
			fail(w, "InvalidCiphertextException", "")
			return
		}
		plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], contextAD(req.EncryptionContext))
		if err != nil {
			fail(w, "InvalidCiphertextException", "")
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"Plaintext": plain, "KeyId": "arn:aws:kms:us-east-1:111122223333:key/" + id,
			"EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
	default:
		fail(w, "UnknownOperationException", target)
	}
}

func fail(w http.ResponseWriter, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func kmsClient(url string) *kms.Client {
	return kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "not-a-secret", ""),
	})
}

func TestKMSKEKWrapsThroughKMSJSONProtocol(t *testing.T) {
	fake := newFakeKMS("key-a", "key-b")
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ctx := context.Background()
	kek := &keyring.KMSKEK{Client: kmsClient(srv.URL), KeyID: "key-a"}
	if kek.ID() != "kms:key-a" {
		t.Errorf("ID = %q", kek.ID())
	}
	dek := bytes.Repeat([]byte{9}, 32)
	info := "tenant=t1;kind=data;version=1"
	wrapped, err := kek.Wrap(ctx, dek, info)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(wrapped, dek) {
		t.Fatal("the wrapped key carries the key")
	}
	got, err := kek.Unwrap(ctx, kek.ID(), wrapped, info)
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Unwrap = %x, %v", got, err)
	}

	tests := []struct {
		name    string
		kekID   string
		wrapped []byte
		info    string
	}{
		{"another tenant's context", kek.ID(), wrapped, "tenant=t2;kind=data;version=1"},
		{"another key named", "kms:key-b", wrapped, info},
		{"not a KMS key ID", "local:0011", wrapped, info},
		{"blob altered", kek.ID(), flip(wrapped, len(wrapped)-1), info},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := kek.Unwrap(ctx, tt.kekID, tt.wrapped, tt.info); !errors.Is(err, keyring.ErrWrongKEK) || got != nil {
				t.Errorf("Unwrap = %x, %v; want ErrWrongKEK", got, err)
			}
		})
	}

	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.unsigned != 0 {
		t.Errorf("%d requests without a SigV4 signature", fake.unsigned)
	}
	if fake.targets[0] != "TrentService.Encrypt" || fake.targets[1] != "TrentService.Decrypt" {
		t.Errorf("targets %v", fake.targets[:2])
	}
	if c := fake.contexts[0]; len(c) != 1 || c["carebook:key"] != info {
		t.Errorf("encryption context %v, want the key's IDs only", c)
	}
}

// TestKeyringOverKMS seals and opens through a keyring whose KEK is the
// KMS client, and fails closed when KMS refuses.
func TestKeyringOverKMS(t *testing.T) {
	f := newFixture(t)
	fake := newFakeKMS("key-a")
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ctx := context.Background()
	// bravo's keys were made by the local KEK; a fresh tenant's are made
	// by KMS on first use.
	tenant := f.a.Tenant.ID
	if err := f.admin.Exec("DELETE FROM patient_identifiers WHERE tenant_id = ? AND value_sealed IS NOT NULL", tenant).Error; err != nil {
		t.Fatal(err)
	}
	if err := f.admin.Exec("DELETE FROM tenant_keys WHERE tenant_id = ?", tenant).Error; err != nil {
		t.Fatal(err)
	}
	kms := keyring.New(f.app, &keyring.KMSKEK{Client: kmsClient(srv.URL), KeyID: "key-a"})
	sealed, err := kms.Seal(ctx, tenant, "whsec_123")
	if err != nil {
		t.Fatal(err)
	}
	fresh := keyring.New(f.app, &keyring.KMSKEK{Client: kmsClient(srv.URL), KeyID: "key-a"})
	if got, err := fresh.Open(ctx, tenant, sealed); err != nil || got != "whsec_123" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	var kekID string
	f.admin.Raw("SELECT kek_id FROM tenant_keys WHERE tenant_id = ? AND kind = 'data'", tenant).Scan(&kekID)
	if kekID != "kms:key-a" {
		t.Errorf("kek_id = %q", kekID)
	}
	// The local KEK cannot open what KMS wrapped, and says so.
	if _, err := f.fresh().Open(ctx, tenant, sealed); !errors.Is(err, keyring.ErrWrongKEK) {
		t.Errorf("local KEK on a KMS-wrapped key: %v; want ErrWrongKEK", err)
	}
}
