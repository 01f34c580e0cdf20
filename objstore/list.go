package objstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/uuid"
)

// ErrExists means PutKeyOnce found an object at the key already.
var ErrExists = errors.New("objstore: object exists")

// List returns up to limit keys of the tenant's kind (not of kinds below
// it), in the store's order: ascending by key in UTF-8 bytes. A caller that
// wants the newest first names its keys so that they sort that way.
func (s *Store) List(ctx context.Context, tenant uuid.UUID, kind string, limit int) ([]string, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit must be positive", ErrInvalid)
	}
	prefix := TenantPrefix(tenant) + kind + "/"
	in := &s3.ListObjectsV2Input{
		Bucket:    aws.String(s.cfg.Bucket),
		Prefix:    aws.String(prefix),
		Delimiter: aws.String("/"),
	}
	if limit < 1000 {
		in.MaxKeys = aws.Int32(int32(limit))
	}
	var keys []string
	pages := s3.NewListObjectsV2Paginator(s.client, in)
	for pages.HasMorePages() && len(keys) < limit {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return keys, fmt.Errorf("objstore: list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			if k := aws.ToString(o.Key); strings.HasPrefix(k, prefix) && len(keys) < limit {
				keys = append(keys, k)
			}
		}
	}
	return keys, nil
}

// PutKeyOnce is PutKey that never replaces: the server is asked to store
// body only if nothing is at the key yet (If-None-Match: *), and
// ErrExists is returned when something is. Stores that ignore the
// condition replace instead; a deployment that relies on write-once
// objects also turns on the bucket's object lock.
func (s *Store) PutKeyOnce(ctx context.Context, tenant uuid.UUID, key string, body []byte, contentType string) (Object, error) {
	_, name, err := parseKey(tenant, key)
	if err != nil {
		return Object{}, err
	}
	sum := sha256.Sum256(body)
	if isContentAddress(name) && name != hex.EncodeToString(sum[:]) {
		return Object{}, fmt.Errorf("%w: name is a SHA-256 but not the body's", ErrInvalid)
	}
	obj, err := s.put(ctx, key, body, sum, contentType, func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") })
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) && (resp.HTTPStatusCode() == http.StatusPreconditionFailed || resp.HTTPStatusCode() == http.StatusConflict) {
		return Object{}, fmt.Errorf("objstore: put %s: %w", key, ErrExists)
	}
	return obj, err
}

// ListAll returns the key of every object under the tenant's prefix, in the
// store's order. It is for checks that must see all of a tenant's files
// (an erasure's proof, an audit), not for serving requests: it reads the
// whole listing.
func (s *Store) ListAll(ctx context.Context, tenant uuid.UUID) ([]string, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	prefix := TenantPrefix(tenant)
	var keys []string
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.cfg.Bucket),
		Prefix: aws.String(prefix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return keys, fmt.Errorf("objstore: list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}
