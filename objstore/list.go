package objstore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
)

// List returns the key of every object under the tenant's prefix, in the
// store's order. It is for checks that must see all of a tenant's files
// (an erasure's proof, an audit), not for serving requests: it reads the
// whole listing.
func (s *Store) List(ctx context.Context, tenant uuid.UUID) ([]string, error) {
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
