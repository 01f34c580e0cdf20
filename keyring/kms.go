package keyring

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMSAPI is the part of the AWS KMS client that KMSKEK uses.
type KMSAPI interface {
	Encrypt(ctx context.Context, in *kms.EncryptInput, opts ...func(*kms.Options)) (*kms.EncryptOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, opts ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// KMSKEK is a KEK kept in AWS KMS (CAREBOOK_KMS_KEY_ID): key material never
// leaves KMS, every unwrap is a KMS call that CloudTrail logs, and access is
// granted or withdrawn by KMS key policy. Keys are small (32 bytes), so
// KMS's Encrypt and Decrypt wrap them directly.
type KMSKEK struct {
	Client KMSAPI
	KeyID  string // key ID, ARN or alias/...
}

// encryptionContext is KMS's associated data: Decrypt must present the same
// map, and CloudTrail records it, so it holds IDs only.
func encryptionContext(info string) map[string]string {
	return map[string]string{"carebook:key": info}
}

// ID implements KEK.
func (k *KMSKEK) ID() string { return "kms:" + k.KeyID }

// Wrap implements KEK.
func (k *KMSKEK) Wrap(ctx context.Context, key []byte, info string) ([]byte, error) {
	out, err := k.Client.Encrypt(ctx, &kms.EncryptInput{
		KeyId:             aws.String(k.KeyID),
		Plaintext:         key,
		EncryptionContext: encryptionContext(info),
	})
	if err != nil {
		return nil, fmt.Errorf("kms encrypt: %w", err)
	}
	return out.CiphertextBlob, nil
}

// Unwrap implements KEK. A refusal by KMS that a retry cannot fix (the
// blob or context is wrong, the key is another one) is ErrWrongKEK;
// throttling and outages are returned as they are, to be retried.
func (k *KMSKEK) Unwrap(ctx context.Context, kekID string, wrapped []byte, info string) ([]byte, error) {
	id, ok := strings.CutPrefix(kekID, "kms:")
	if !ok {
		return nil, fmt.Errorf("%w (wrapped by %s, configured %s)", ErrWrongKEK, kekID, k.ID())
	}
	out, err := k.Client.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob:    wrapped,
		KeyId:             aws.String(id),
		EncryptionContext: encryptionContext(info),
	})
	var invalid *types.InvalidCiphertextException
	var incorrect *types.IncorrectKeyException
	switch {
	case errors.As(err, &invalid), errors.As(err, &incorrect):
		return nil, ErrWrongKEK
	case err != nil:
		return nil, fmt.Errorf("kms decrypt: %w", err)
	case len(out.Plaintext) != keySize:
		return nil, ErrWrongKEK
	}
	return out.Plaintext, nil
}
