package objstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/uuid"
)

// The kinds of failure callers tell apart, tested with errors.Is.
var (
	// ErrNotFound means there is no object at the key.
	ErrNotFound = errors.New("objstore: object not found")

	// ErrCorrupt means the bytes read back are not the bytes that were
	// stored: they do not hash to a content-addressed key's name, or not to
	// the SHA-256 the store recorded at upload. Retrying does not help;
	// the object has to be restored or written again.
	ErrCorrupt = errors.New("objstore: object corrupt")

	// ErrForeignKey means the key is not under the calling tenant's prefix.
	// One tenant never reads, links to or deletes another's object, even
	// knowing its key.
	ErrForeignKey = errors.New("objstore: key belongs to another tenant")

	// ErrInvalid means an argument can never work: a nil tenant, a malformed
	// kind, key or content type.
	ErrInvalid = errors.New("objstore: invalid argument")
)

// SSE values for [Config].SSE.
const (
	SSENone = ""
	SSES3   = "AES256"  // keys managed by the store (SSE-S3)
	SSEKMS  = "aws:kms" // keys in KMS (SSE-KMS), optionally a named key
)

// Presigned URL lifetimes. A link to patient data should outlive the click
// that asked for it by little: the default is enough to start a download
// on a slow connection, and the maximum stops a link from being kept.
const (
	DefaultPresignTTL = 5 * time.Minute
	MinPresignTTL     = 10 * time.Second
	MaxPresignTTL     = 15 * time.Minute
)

// Config says where the store is and how to reach it. Credentials are
// always explicit: the store never falls back to ~/.aws, the environment
// or the instance metadata service.
type Config struct {
	// Endpoint is the S3 API's base URL, e.g. http://127.0.0.1:7070 for a
	// local gateway. Empty means AWS S3 in Region.
	Endpoint string
	// Region is the region requests are signed for; required.
	Region string
	// Bucket holds every tenant's objects.
	Bucket string
	// AccessKey and SecretKey are static credentials.
	AccessKey string
	SecretKey string
	// PathStyle addresses the bucket in the path (http://host/bucket/key)
	// rather than the host name; local gateways need it.
	PathStyle bool
	// SSE asks the store to encrypt each object at rest: SSENone, SSES3
	// or SSEKMS. See the package doc for what each server does with it.
	SSE string
	// KMSKeyID names the KMS key for SSEKMS; empty means the account's
	// default S3 key. Only valid with SSEKMS.
	KMSKeyID string
}

// bucketPattern is S3's bucket naming rule for new buckets (without the
// rarer exclusions such as IP-address-shaped names).
var bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func (c Config) validate() error {
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("objstore: endpoint must be an http or https URL")
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return errors.New("objstore: endpoint must not carry user info, a query or a fragment")
		}
	}
	if c.Region == "" {
		return errors.New("objstore: region is required")
	}
	if !bucketPattern.MatchString(c.Bucket) {
		return errors.New("objstore: bucket must be 3-63 lowercase letters, digits, dots or dashes, starting and ending with a letter or digit")
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return errors.New("objstore: access key and secret key are required")
	}
	switch c.SSE {
	case SSENone, SSES3, SSEKMS:
	default:
		return fmt.Errorf("objstore: SSE must be empty, %q or %q", SSES3, SSEKMS)
	}
	if c.KMSKeyID != "" && c.SSE != SSEKMS {
		return fmt.Errorf("objstore: a KMS key ID needs SSE %q", SSEKMS)
	}
	return nil
}

// Store keeps tenants' objects in one bucket, each tenant under its own
// prefix. It is safe for concurrent use.
type Store struct {
	cfg     Config
	client  *s3.Client
	presign *s3.PresignClient
	// now is the clock presigned URLs are signed with.
	now func() time.Time
}

// Object describes a stored object.
type Object struct {
	Key    string // full key, "tenants/<tenant>/<kind>/<name>"
	SHA256 string // lowercase hex SHA-256 of the bytes
	Size   int64  // bytes
}

// New checks cfg and builds a Store. It makes no request; call
// [Store.EnsureBucket] to create the bucket or check that it is there.
func New(cfg Config) (*Store, error) {
	return newStore(cfg)
}

// newStore is New with extra client options, which tests use to reach the
// wire.
func newStore(cfg Config, optFns ...func(*s3.Options)) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	opts := s3.Options{
		Region:       cfg.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, ""),
		UsePathStyle: cfg.PathStyle,
		// Put sends its own SHA-256; other requests carry a checksum only
		// where S3 requires one (DeleteObjects). Get checks the bytes itself
		// (see Store.Get).
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		// The SDK's standard retryer (3 attempts with jittered backoff on
		// throttling, 5xx and connection errors) suits an object store; the
		// callers are activities with retry policies of their own.
		RetryMode: aws.RetryModeStandard,
	}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	s := &Store{cfg: cfg, client: s3.New(opts, optFns...), now: time.Now}
	s.presign = s3.NewPresignClient(s.client, func(o *s3.PresignOptions) {
		o.Presigner = clockPresigner{signer: v4.NewSigner(), now: func() time.Time { return s.now() }}
	})
	return s, nil
}

// Bucket is the bucket the store writes to.
func (s *Store) Bucket() string { return s.cfg.Bucket }

// EnsureBucket creates the bucket if it does not exist. It is idempotent,
// and needs no create permission when the bucket is already there.
func (s *Store) EnsureBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.cfg.Bucket)})
	if err == nil {
		return nil
	}
	if !isBucketMissing(err) {
		return fmt.Errorf("objstore: check bucket %s: %w", s.cfg.Bucket, err)
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(s.cfg.Bucket)}
	// us-east-1 is S3's default location and must not be named.
	if s.cfg.Region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(s.cfg.Region),
		}
	}
	_, err = s.client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("objstore: create bucket %s: %w", s.cfg.Bucket, err)
	}
	return nil
}

// Put stores body content-addressed at "tenants/<tenant>/<kind>/<sha256>"
// and returns where. Putting the same bytes again writes the same key, so
// there is still one object, and a retried activity is harmless. kind is
// one or more slash-separated segments of lowercase letters, digits and
// dashes, e.g. "hl7", "fhir", "lab-pdf". contentType defaults to
// application/octet-stream.
//
// The server is sent the bytes' SHA-256 and refuses an upload that does not
// match it.
func (s *Store) Put(ctx context.Context, tenant uuid.UUID, kind string, body []byte, contentType string) (Object, error) {
	if err := checkTenant(tenant); err != nil {
		return Object{}, err
	}
	if err := checkKind(kind); err != nil {
		return Object{}, err
	}
	sum := sha256.Sum256(body)
	key := TenantPrefix(tenant) + kind + "/" + hex.EncodeToString(sum[:])
	return s.put(ctx, key, body, sum, contentType)
}

// PutKey stores body at a key the caller names, e.g.
// "tenants/<tenant>/settlement/2026-12-01.json", replacing what was there.
// The key must be under the tenant's prefix, with a kind and a name after
// it; ".", ".." and empty segments and non-printable characters are refused
// with ErrInvalid, and a key of another tenant with ErrForeignKey. A name
// shaped like a content address (64 lowercase hex digits) must be the
// body's SHA-256.
//
// Keys show up in server logs and URLs: build them from IDs and dates,
// never from patient data.
func (s *Store) PutKey(ctx context.Context, tenant uuid.UUID, key string, body []byte, contentType string) (Object, error) {
	_, name, err := parseKey(tenant, key)
	if err != nil {
		return Object{}, err
	}
	sum := sha256.Sum256(body)
	if isContentAddress(name) && name != hex.EncodeToString(sum[:]) {
		return Object{}, fmt.Errorf("%w: name is a SHA-256 but not the body's", ErrInvalid)
	}
	return s.put(ctx, key, body, sum, contentType)
}

func (s *Store) put(ctx context.Context, key string, body []byte, sum [32]byte, contentType string, mods ...func(*s3.PutObjectInput)) (Object, error) {
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	if _, _, err := mime.ParseMediaType(contentType); err != nil {
		return Object{}, fmt.Errorf("%w: content type", ErrInvalid)
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String(contentType),
		// The server hashes what it receives and refuses the upload
		// (BadDigest) when it differs, so bytes damaged on the way are never
		// stored; it also keeps the value, which Get compares against.
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	}
	if s.cfg.SSE != SSENone {
		in.ServerSideEncryption = types.ServerSideEncryption(s.cfg.SSE)
		if s.cfg.KMSKeyID != "" {
			in.SSEKMSKeyId = aws.String(s.cfg.KMSKeyID)
		}
	}
	for _, m := range mods {
		m(in)
	}
	if _, err := s.client.PutObject(ctx, in); err != nil {
		return Object{}, fmt.Errorf("objstore: put %s: %w", key, err)
	}
	return Object{Key: key, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body))}, nil
}

// Get reads the object at key, which must be under the tenant's prefix
// (ErrForeignKey otherwise, before anything is sent). It returns
// ErrNotFound when there is no object, and ErrCorrupt when the bytes do
// not hash to a content-addressed key's name or to the SHA-256 the server
// recorded at upload.
func (s *Store) Get(ctx context.Context, tenant uuid.UUID, key string) ([]byte, error) {
	_, name, err := parseKey(tenant, key)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket:       aws.String(s.cfg.Bucket),
		Key:          aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled,
	}, withoutSDKResponseValidation)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("objstore: get %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("objstore: get %s: %w", key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("objstore: read %s: %w", key, err)
	}
	sum := sha256.Sum256(body)
	if isContentAddress(name) && name != hex.EncodeToString(sum[:]) {
		return nil, fmt.Errorf("objstore: get %s: %w: bytes do not hash to the key", key, ErrCorrupt)
	}
	if out.ChecksumSHA256 != nil && *out.ChecksumSHA256 != base64.StdEncoding.EncodeToString(sum[:]) {
		return nil, fmt.Errorf("objstore: get %s: %w: bytes do not match the checksum stored at upload", key, ErrCorrupt)
	}
	return body, nil
}

// withoutSDKResponseValidation drops the SDK's own check of a response
// checksum, which fails the body read with an error of a type callers
// cannot test for; Get makes the same check and says ErrCorrupt. Should a
// later SDK rename the step, the removal fails quietly and the SDK's check
// runs instead: corrupt bytes are still never returned.
func withoutSDKResponseValidation(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		_, _ = st.Deserialize.Remove("AWSChecksum:ValidateOutputPayloadChecksum")
		return nil
	})
}

// PresignGet returns a URL that downloads the object at key without
// credentials until it expires. ttl is clamped to [MinPresignTTL,
// MaxPresignTTL]; zero means DefaultPresignTTL. The response carries
// Content-Disposition attachment with downloadName (reduced to a plain file
// name; empty becomes "download") and Cache-Control no-store, so the
// browser saves the file and no cache keeps it. The key must be under the
// tenant's prefix (ErrForeignKey). No request is made: a URL for a missing
// object gets a 404 from the server.
//
// The URL, download name included, ends up in server access logs: name
// the file after what it is and when ("lab-report-2026-12-01.pdf"), not
// after the patient.
func (s *Store) PresignGet(ctx context.Context, tenant uuid.UUID, key string, ttl time.Duration, downloadName string) (string, error) {
	if _, _, err := parseKey(tenant, key); err != nil {
		return "", err
	}
	switch {
	case ttl == 0:
		ttl = DefaultPresignTTL
	case ttl < MinPresignTTL:
		ttl = MinPresignTTL
	case ttl > MaxPresignTTL:
		ttl = MaxPresignTTL
	}
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket:                     aws.String(s.cfg.Bucket),
		Key:                        aws.String(key),
		ResponseContentDisposition: aws.String(contentDisposition(downloadName)),
		ResponseCacheControl:       aws.String("no-store"),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("objstore: presign %s: %w", key, err)
	}
	return req.URL, nil
}

// Delete removes the object at key, which must be under the tenant's
// prefix. Deleting a missing object is not an error.
func (s *Store) Delete(ctx context.Context, tenant uuid.UUID, key string) error {
	if _, _, err := parseKey(tenant, key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.cfg.Bucket),
		Key:    aws.String(key),
	})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("objstore: delete %s: %w", key, err)
	}
	return nil
}

// DeletePrefix removes every object of the tenant's kind, e.g. all of its
// "hl7" messages (kind "hl7" also covers "hl7/2026/..." keys, but not
// "hl7-archive"), and returns how many it removed. It is idempotent; on
// error some objects may be gone, and calling it again finishes the job.
func (s *Store) DeletePrefix(ctx context.Context, tenant uuid.UUID, kind string) (int, error) {
	if err := checkTenant(tenant); err != nil {
		return 0, err
	}
	if err := checkKind(kind); err != nil {
		return 0, err
	}
	prefix := TenantPrefix(tenant) + kind + "/"
	deleted := 0
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.cfg.Bucket),
		Prefix: aws.String(prefix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return deleted, fmt.Errorf("objstore: list %s: %w", prefix, err)
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, 0, len(page.Contents))
		for _, o := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		// A listing page holds at most 1000 keys, DeleteObjects' limit.
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.cfg.Bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return deleted, fmt.Errorf("objstore: delete under %s: %w", prefix, err)
		}
		deleted += len(ids) - len(out.Errors)
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return deleted, fmt.Errorf("objstore: delete under %s: %d objects failed, first %s: %s",
				prefix, len(out.Errors), aws.ToString(e.Key), aws.ToString(e.Code))
		}
	}
	return deleted, nil
}

// isNotFound reports whether err says there is no object at the key: S3's
// NoSuchKey, or a bare 404 (HEAD responses have no body to name the error).
// A missing bucket is not a missing object: it is a setup fault, and is
// reported as the server said it.
func isNotFound(err error) bool {
	var noBucket *types.NoSuchBucket
	if errors.As(err, &noBucket) {
		return false
	}
	var noKey *types.NoSuchKey
	if errors.As(err, &noKey) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "NoSuchBucket" {
		return false
	}
	var resp *smithyhttp.ResponseError
	return errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusNotFound
}

// isBucketMissing reports whether err says the bucket does not exist.
func isBucketMissing(err error) bool {
	var noBucket *types.NoSuchBucket
	if errors.As(err, &noBucket) {
		return true
	}
	var resp *smithyhttp.ResponseError
	return errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusNotFound
}

// clockPresigner signs with the store's clock instead of the SDK's, so a
// test can make a URL that has already expired without waiting for it.
type clockPresigner struct {
	signer *v4.Signer
	now    func() time.Time
}

func (p clockPresigner) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return p.signer.PresignHTTP(ctx, creds, r, payloadHash, service, region, p.now(), optFns...)
}
