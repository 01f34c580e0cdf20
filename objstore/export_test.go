package objstore

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// SetClock makes s sign presigned URLs as if it were now().
func SetClock(s *Store, now func() time.Time) { s.now = now }

// NewWithOptions is New with extra S3 client options, so a test can put
// its own transport or signing steps between the store and the server.
func NewWithOptions(cfg Config, optFns ...func(*s3.Options)) (*Store, error) {
	return newStore(cfg, optFns...)
}
