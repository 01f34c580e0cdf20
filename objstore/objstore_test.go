package objstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"

	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/objstore/versitygw"
)

// gw is the gateway every test in this package talks to.
var gw *versitygw.Server

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "objstore-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// A missing gateway fails the package rather than skipping it: these
	// tests are the only proof the store works against a real server.
	gw, err = versitygw.Start(context.Background(), dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "objstore tests need versitygw: %v\n", err)
		return 1
	}
	defer gw.Stop()
	return m.Run()
}

// config is a store configuration for the test gateway and a bucket of the
// test's own, so tests never see each other's objects.
func config(t *testing.T) objstore.Config {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("_", "-", "/", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	return objstore.Config{
		Endpoint:  gw.Endpoint,
		Region:    gw.Region,
		Bucket:    strings.Trim("t-"+name, "-") + "-" + uuid.NewString()[:8],
		AccessKey: gw.AccessKey,
		SecretKey: gw.SecretKey,
		PathStyle: true,
	}
}

// newStore is a store on a fresh bucket that exists.
func newStore(t *testing.T) *objstore.Store {
	t.Helper()
	s, err := objstore.New(config(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// rawClient talks to the gateway directly, to look behind the store.
func rawClient() *s3.Client {
	return s3.New(s3.Options{
		Region:       gw.Region,
		BaseEndpoint: aws.String(gw.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(gw.AccessKey, gw.SecretKey, ""),
	})
}

func listKeys(t *testing.T, bucket, prefix string) []string {
	t.Helper()
	out, err := rawClient().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{
		Bucket: aws.String(bucket),
		Prefix: aws.String(prefix),
	})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// body is a test payload: an HL7-shaped message with no real data.
func body(n int) []byte {
	return []byte(fmt.Sprintf("MSH|^~\\&|LAB|TEST|||20260101000000||ORU^R01|MSG%05d|P|2.5\r", n))
}

func TestPutGetRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tenant := uuid.New()
	msg := body(1)

	obj, err := s.Put(ctx, tenant, "hl7", msg, "application/hl7-v2")
	if err != nil {
		t.Fatal(err)
	}
	want := objstore.Object{
		Key:    "tenants/" + tenant.String() + "/hl7/" + sha(msg),
		SHA256: sha(msg),
		Size:   int64(len(msg)),
	}
	if obj != want {
		t.Fatalf("Put = %+v, want %+v", obj, want)
	}
	got, err := s.Get(ctx, tenant, obj.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("Get = %q, want %q", got, msg)
	}

	head, err := rawClient().HeadObject(ctx, &s3.HeadObjectInput{
		Bucket:       aws.String(s.Bucket()),
		Key:          aws.String(obj.Key),
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		t.Fatal(err)
	}
	if ct := aws.ToString(head.ContentType); ct != "application/hl7-v2" {
		t.Errorf("content type = %q, want application/hl7-v2", ct)
	}
	sum := sha256.Sum256(msg)
	if got, want := aws.ToString(head.ChecksumSHA256), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("stored SHA-256 checksum = %q, want %q (the one Put sent)", got, want)
	}
}

func TestPutKeyRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tenant := uuid.New()
	key := objstore.TenantPrefix(tenant) + "settlement/2026-12-01.json"

	for _, content := range []string{`{"v":1}`, `{"v":2}`} {
		obj, err := s.PutKey(ctx, tenant, key, []byte(content), "application/json")
		if err != nil {
			t.Fatal(err)
		}
		want := objstore.Object{Key: key, SHA256: sha([]byte(content)), Size: int64(len(content))}
		if obj != want {
			t.Fatalf("PutKey = %+v, want %+v", obj, want)
		}
		got, err := s.Get(ctx, tenant, key)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Fatalf("Get = %q, want %q (PutKey replaces)", got, content)
		}
	}
}

func TestPutIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tenant := uuid.New()
	msg := body(2)

	first, err := s.Put(ctx, tenant, "hl7", msg, "application/hl7-v2")
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Put(ctx, tenant, "hl7", msg, "application/hl7-v2")
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Fatalf("second Put = %+v, want %+v", second, first)
	}
	keys := listKeys(t, s.Bucket(), objstore.TenantPrefix(tenant))
	if len(keys) != 1 || keys[0] != first.Key {
		t.Fatalf("objects after two puts = %q, want just %q", keys, first.Key)
	}
}

func TestForeignTenantIsRefused(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	owner, other := uuid.New(), uuid.New()
	obj, err := s.Put(ctx, owner, "lab-pdf", []byte("%PDF-1.7 test"), "application/pdf")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		call func() error
		want error
	}{
		{name: "get", want: objstore.ErrForeignKey, call: func() error {
			_, err := s.Get(ctx, other, obj.Key)
			return err
		}},
		{name: "presign", want: objstore.ErrForeignKey, call: func() error {
			_, err := s.PresignGet(ctx, other, obj.Key, time.Minute, "report.pdf")
			return err
		}},
		{name: "delete", want: objstore.ErrForeignKey, call: func() error {
			return s.Delete(ctx, other, obj.Key)
		}},
		{name: "put key", want: objstore.ErrForeignKey, call: func() error {
			_, err := s.PutKey(ctx, other, obj.Key, []byte("overwrite"), "")
			return err
		}},
		{name: "get as the nil tenant", want: objstore.ErrInvalid, call: func() error {
			_, err := s.Get(ctx, uuid.Nil, obj.Key)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	got, err := s.Get(ctx, owner, obj.Key)
	if err != nil {
		t.Fatalf("owner's object after the other tenant's attempts: %v", err)
	}
	if string(got) != "%PDF-1.7 test" {
		t.Fatalf("owner's object = %q, changed by the other tenant", got)
	}
}

func TestMalformedKeysAreRefused(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tenant := uuid.New()
	p := objstore.TenantPrefix(tenant)
	// A secret object of another tenant that traversal would reach.
	victim := uuid.New()
	if _, err := s.PutKey(ctx, victim, objstore.TenantPrefix(victim)+"settlement/x.json", []byte("{}"), ""); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		key  string
		want error
	}{
		{name: "parent segment", key: p + "../" + victim.String() + "/settlement/x.json", want: objstore.ErrInvalid},
		{name: "parent segment inside", key: p + "settlement/../x.json", want: objstore.ErrInvalid},
		{name: "dot segment", key: p + "settlement/./x.json", want: objstore.ErrInvalid},
		{name: "empty segment", key: p + "settlement//x.json", want: objstore.ErrInvalid},
		{name: "trailing slash", key: p + "settlement/", want: objstore.ErrInvalid},
		{name: "no kind", key: p + "x.json", want: objstore.ErrInvalid},
		{name: "prefix only", key: p, want: objstore.ErrInvalid},
		{name: "newline", key: p + "settlement/x\n.json", want: objstore.ErrInvalid},
		{name: "nul", key: p + "settlement/x\x00.json", want: objstore.ErrInvalid},
		{name: "escape", key: p + "settlement/\x1b[2Jx.json", want: objstore.ErrInvalid},
		{name: "invalid utf-8", key: p + "settlement/\xff.json", want: objstore.ErrInvalid},
		{name: "upper-case kind", key: p + "Settlement/x.json", want: objstore.ErrInvalid},
		{name: "too long", key: p + "settlement/" + strings.Repeat("a", 1024), want: objstore.ErrInvalid},
		{name: "another tenant by traversal from the root", key: "tenants/" + tenant.String() + "/../" + victim.String(), want: objstore.ErrInvalid},
		{name: "no tenant prefix", key: "settlement/x.json", want: objstore.ErrForeignKey},
		{name: "leading slash", key: "/" + p + "settlement/x.json", want: objstore.ErrForeignKey},
		{name: "upper-case tenant", key: "tenants/" + strings.ToUpper(tenant.String()) + "/settlement/x.json", want: objstore.ErrForeignKey},
		{name: "tenant as a prefix of a longer id", key: strings.TrimSuffix(p, "/") + "0/settlement/x.json", want: objstore.ErrForeignKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.PutKey(ctx, tenant, tt.key, []byte("x"), ""); !errors.Is(err, tt.want) {
				t.Errorf("PutKey err = %v, want %v", err, tt.want)
			}
			if _, err := s.Get(ctx, tenant, tt.key); !errors.Is(err, tt.want) {
				t.Errorf("Get err = %v, want %v", err, tt.want)
			}
			if _, err := s.PresignGet(ctx, tenant, tt.key, 0, ""); !errors.Is(err, tt.want) {
				t.Errorf("PresignGet err = %v, want %v", err, tt.want)
			}
			if err := s.Delete(ctx, tenant, tt.key); !errors.Is(err, tt.want) {
				t.Errorf("Delete err = %v, want %v", err, tt.want)
			}
		})
	}

	if keys := listKeys(t, s.Bucket(), ""); len(keys) != 1 {
		t.Fatalf("bucket holds %q, want only the victim's object", keys)
	}
}

func TestBadKindsAreRefused(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tenant := uuid.New()
	for _, kind := range []string{"", "HL7", "hl7/", "/hl7", "hl7//x", "../hl7", "-hl7", "hl7-", "lab pdf", "lab_pdf", "hl7\n", strings.Repeat("a", 129)} {
		t.Run(fmt.Sprintf("%q", kind), func(t *testing.T) {
			if _, err := s.Put(ctx, tenant, kind, []byte("x"), ""); !errors.Is(err, objstore.ErrInvalid) {
				t.Errorf("Put err = %v, want ErrInvalid", err)
			}
			if _, err := s.DeletePrefix(ctx, tenant, kind); !errors.Is(err, objstore.ErrInvalid) {
				t.Errorf("DeletePrefix err = %v, want ErrInvalid", err)
			}
		})
	}
	for _, kind := range []string{"hl7", "lab-pdf", "fhir/r4", "settlement/2026"} {
		if _, err := s.Put(ctx, tenant, kind, []byte(kind), ""); err != nil {
			t.Errorf("Put kind %q: %v", kind, err)
		}
	}
	if _, err := s.Put(ctx, uuid.Nil, "hl7", []byte("x"), ""); !errors.Is(err, objstore.ErrInvalid) {
		t.Errorf("Put for the nil tenant: err = %v, want ErrInvalid", err)
	}
	if _, err := s.Put(ctx, tenant, "hl7", []byte("x"), "text/plain\r\nX-Evil: 1"); !errors.Is(err, objstore.ErrInvalid) {
		t.Errorf("Put with a header in the content type: err = %v, want ErrInvalid", err)
	}
}

func TestPutKeyRefusesAFalseContentAddress(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tenant := uuid.New()
	key := objstore.TenantPrefix(tenant) + "hl7/" + sha([]byte("other bytes"))
	if _, err := s.PutKey(ctx, tenant, key, []byte("these bytes"), ""); !errors.Is(err, objstore.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	good := objstore.TenantPrefix(tenant) + "hl7/" + sha([]byte("these bytes"))
	if _, err := s.PutKey(ctx, tenant, good, []byte("these bytes"), ""); err != nil {
		t.Fatalf("PutKey at the body's own hash: %v", err)
	}
}

// onDisk is where the gateway's posix backend keeps an object.
func onDisk(s *objstore.Store, key string) string {
	return filepath.Join(gw.Dir, s.Bucket(), filepath.FromSlash(key))
}

func TestCorruptObjectIsDetected(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tenant := uuid.New()
	secret := []byte("OBX|1|NM|GLU^Glucose||5.4|mmol/L|||||F\r")
	damaged := []byte("OBX|1|NM|GLU^Glucose||9.9|mmol/L|||||F\r")

	addressed, err := s.Put(ctx, tenant, "hl7", secret, "application/hl7-v2")
	if err != nil {
		t.Fatal(err)
	}
	named, err := s.PutKey(ctx, tenant, objstore.TenantPrefix(tenant)+"settlement/2026-12-01.hl7", secret, "")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		key  string
	}{
		{name: "content-addressed key", key: addressed.Key},
		// A named key has no hash in its name; the checksum the server
		// recorded at upload catches it.
		{name: "named key", key: named.Key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Rewrite the file in place, as bit rot or a stray process on
			// the server would, leaving the gateway's metadata as it was.
			if err := os.WriteFile(onDisk(s, tt.key), damaged, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(ctx, tenant, tt.key)
			if !errors.Is(err, objstore.ErrCorrupt) {
				t.Fatalf("Get = %d bytes, %v; want ErrCorrupt", len(got), err)
			}
			if got != nil {
				t.Errorf("Get returned %d bytes with the error", len(got))
			}
			for _, b := range [][]byte{secret, damaged, []byte("5.4"), []byte("9.9"), []byte("Glucose")} {
				if strings.Contains(err.Error(), string(b)) {
					t.Errorf("error %q carries object bytes %q", err, b)
				}
			}
		})
	}
}

// tamperTransport flips one byte of every PUT body after the SDK has
// computed and signed everything: damage on the wire.
type tamperTransport struct {
	next     http.RoundTripper
	tampered atomic.Int32
}

func (tt *tamperTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPut || r.Body == nil || r.ContentLength <= 0 {
		return tt.next.RoundTrip(r)
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	b[len(b)-1] ^= 0x01
	tt.tampered.Add(1)
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(bytes.NewReader(b))
	return tt.next.RoundTrip(r)
}

func TestCorruptedUploadIsRefused(t *testing.T) {
	tests := []struct {
		name string
		// unsigned sends the body as UNSIGNED-PAYLOAD, so the signature
		// does not cover it and only the SHA-256 checksum Put sends can
		// catch the damage.
		unsigned bool
		wantCode string
	}{
		{name: "signed payload", unsigned: false, wantCode: "XAmzContentSHA256Mismatch"},
		{name: "checksum alone", unsigned: true, wantCode: "BadDigest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := config(t)
			if err := newStoreFrom(t, cfg).EnsureBucket(ctx); err != nil {
				t.Fatal(err)
			}
			tamper := &tamperTransport{next: http.DefaultTransport}
			s, err := objstore.NewWithOptions(cfg, func(o *s3.Options) {
				o.HTTPClient = &http.Client{Transport: tamper}
				o.RetryMaxAttempts = 1
				if tt.unsigned {
					o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			tenant := uuid.New()
			msg := body(3)

			_, err = s.Put(ctx, tenant, "hl7", msg, "")
			if tamper.tampered.Load() == 0 {
				t.Fatal("the transport damaged nothing; the test proves nothing")
			}
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != tt.wantCode {
				t.Fatalf("Put of damaged bytes: err = %v, want the server's %s", err, tt.wantCode)
			}
			if strings.Contains(err.Error(), string(msg)) {
				t.Errorf("error %q carries the body", err)
			}
			if keys := listKeys(t, cfg.Bucket, ""); len(keys) != 0 {
				t.Fatalf("damaged upload left objects %q", keys)
			}
		})
	}
}

func newStoreFrom(t *testing.T, cfg objstore.Config) *objstore.Store {
	t.Helper()
	s, err := objstore.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMissingObject(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tenant := uuid.New()
	key := objstore.TenantPrefix(tenant) + "hl7/" + sha([]byte("never stored"))

	if _, err := s.Get(ctx, tenant, key); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, tenant, key); err != nil {
		t.Fatalf("Delete of a missing object: %v", err)
	}
}

func TestMissingBucketIsNotAMissingObject(t *testing.T) {
	ctx := context.Background()
	s := newStoreFrom(t, config(t)) // no EnsureBucket
	tenant := uuid.New()
	_, err := s.Get(ctx, tenant, objstore.TenantPrefix(tenant)+"hl7/x")
	if err == nil || errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get from a missing bucket: err = %v, want a setup error other than ErrNotFound", err)
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tenant := uuid.New()
	obj, err := s.Put(ctx, tenant, "hl7", body(4), "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Delete(ctx, tenant, obj.Key); err != nil {
			t.Fatalf("delete %d: %v", i+1, err)
		}
	}
	if _, err := s.Get(ctx, tenant, obj.Key); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
	}
}

func TestDeletePrefix(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tenant, other := uuid.New(), uuid.New()
	put := func(tenant uuid.UUID, kind string, n int) objstore.Object {
		t.Helper()
		obj, err := s.Put(ctx, tenant, kind, body(n), "")
		if err != nil {
			t.Fatal(err)
		}
		return obj
	}
	for n := range 3 {
		put(tenant, "hl7", n)
	}
	put(tenant, "hl7/2026", 10)
	keepSibling := put(tenant, "hl7-archive", 11)
	keepKind := put(tenant, "fhir", 12)
	keepOther := put(other, "hl7", 13)

	n, err := s.DeletePrefix(ctx, tenant, "hl7")
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("DeletePrefix removed %d, want 4", n)
	}
	if keys := listKeys(t, s.Bucket(), objstore.TenantPrefix(tenant)+"hl7/"); len(keys) != 0 {
		t.Errorf("left under the prefix: %q", keys)
	}
	for _, o := range []struct {
		tenant uuid.UUID
		obj    objstore.Object
	}{{tenant, keepSibling}, {tenant, keepKind}, {other, keepOther}} {
		if _, err := s.Get(ctx, o.tenant, o.obj.Key); err != nil {
			t.Errorf("%s should survive: %v", o.obj.Key, err)
		}
	}

	n, err = s.DeletePrefix(ctx, tenant, "hl7")
	if err != nil || n != 0 {
		t.Errorf("second DeletePrefix = %d, %v; want 0, nil", n, err)
	}
}

func TestPresignedDownload(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tenant := uuid.New()
	pdf := []byte("%PDF-1.7 test report")
	obj, err := s.Put(ctx, tenant, "lab-pdf", pdf, "application/pdf")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name            string
		downloadName    string
		wantDisposition string
	}{
		{name: "plain", downloadName: "lab-report-2026-12-01.pdf", wantDisposition: `attachment; filename="lab-report-2026-12-01.pdf"`},
		{name: "path and quotes stripped", downloadName: `../../etc/"x";y.pdf`, wantDisposition: `attachment; filename="_x__y.pdf"`},
		{name: "empty", downloadName: "", wantDisposition: `attachment; filename="download"`},
		{name: "turkish", downloadName: "tahlil-sonuçları.pdf", wantDisposition: `attachment; filename="tahlil-sonu_lar_.pdf"; filename*=UTF-8''tahlil-sonu%C3%A7lar%C4%B1.pdf`},
		{name: "header injection", downloadName: "a\r\nSet-Cookie: x=1.pdf", wantDisposition: `attachment; filename="a__Set-Cookie: x=1.pdf"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := s.PresignGet(ctx, tenant, obj.Key, time.Minute, tt.downloadName)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, got)
			}
			if !bytes.Equal(got, pdf) {
				t.Errorf("body = %q, want %q", got, pdf)
			}
			if cd := resp.Header.Get("Content-Disposition"); cd != tt.wantDisposition {
				t.Errorf("Content-Disposition = %q, want %q", cd, tt.wantDisposition)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/pdf" {
				t.Errorf("Content-Type = %q, want application/pdf", ct)
			}
		})
	}
}

func TestPresignTTLIsClamped(t *testing.T) {
	ctx := context.Background()
	s := newStoreFrom(t, config(t))
	tenant := uuid.New()
	key := objstore.TenantPrefix(tenant) + "lab-pdf/x"

	tests := []struct {
		name string
		ttl  time.Duration
		want string
	}{
		{name: "zero is the default", ttl: 0, want: "300"},
		{name: "below the minimum", ttl: time.Second, want: "10"},
		{name: "negative", ttl: -time.Minute, want: "10"},
		{name: "inside", ttl: 2 * time.Minute, want: "120"},
		{name: "above the maximum", ttl: 24 * time.Hour, want: "900"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := s.PresignGet(ctx, tenant, key, tt.ttl, "x")
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Query().Get("X-Amz-Expires"); got != tt.want {
				t.Errorf("X-Amz-Expires = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestExpiredPresignedURLIsRefused(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tenant := uuid.New()
	obj, err := s.Put(ctx, tenant, "lab-pdf", []byte("%PDF-1.7 expired"), "application/pdf")
	if err != nil {
		t.Fatal(err)
	}
	// Signed an hour ago for the shortest lifetime: long expired now.
	objstore.SetClock(s, func() time.Time { return time.Now().Add(-time.Hour) })
	u, err := s.PresignGet(ctx, tenant, obj.Key, objstore.MinPresignTTL, "report.pdf")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403; body %q", resp.StatusCode, got)
	}
	if bytes.Contains(got, []byte("%PDF")) {
		t.Fatalf("expired URL served the object")
	}
}

func TestEnsureBucketTwice(t *testing.T) {
	ctx := context.Background()
	cfg := config(t)
	s := newStoreFrom(t, cfg)
	for i := range 2 {
		if err := s.EnsureBucket(ctx); err != nil {
			t.Fatalf("EnsureBucket %d: %v", i+1, err)
		}
	}
	if _, err := rawClient().HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(cfg.Bucket)}); err != nil {
		t.Fatalf("bucket missing after EnsureBucket: %v", err)
	}
}

func TestEnsureBucketWithWrongCredentialsFails(t *testing.T) {
	cfg := config(t)
	cfg.SecretKey = "not-the-secret"
	if err := newStoreFrom(t, cfg).EnsureBucket(context.Background()); err == nil {
		t.Fatal("EnsureBucket with a wrong secret succeeded")
	}
}

// TestSSEOnVersitygw pins down what the dev and test gateway does with
// server-side encryption: it takes the request, stores plain bytes and
// reports no encryption. See the package doc.
func TestSSEOnVersitygw(t *testing.T) {
	tests := []struct {
		name     string
		sse      string
		kmsKeyID string
	}{
		{name: "SSE-S3", sse: objstore.SSES3},
		{name: "SSE-KMS with a key", sse: objstore.SSEKMS, kmsKeyID: "alias/carebook-test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := config(t)
			cfg.SSE, cfg.KMSKeyID = tt.sse, tt.kmsKeyID
			s := newStoreFrom(t, cfg)
			if err := s.EnsureBucket(ctx); err != nil {
				t.Fatal(err)
			}
			tenant := uuid.New()
			msg := []byte("plain on disk: " + tt.name)

			obj, err := s.Put(ctx, tenant, "hl7", msg, "")
			if err != nil {
				t.Fatalf("Put with SSE %q: %v", tt.sse, err)
			}
			got, err := s.Get(ctx, tenant, obj.Key)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("Get = %q, %v; want %q", got, err, msg)
			}
			head, err := rawClient().HeadObject(ctx, &s3.HeadObjectInput{
				Bucket: aws.String(cfg.Bucket),
				Key:    aws.String(obj.Key),
			})
			if err != nil {
				t.Fatal(err)
			}
			if head.ServerSideEncryption != "" || head.SSEKMSKeyId != nil {
				t.Errorf("gateway reports encryption %q (key %v); it is documented as not encrypting",
					head.ServerSideEncryption, aws.ToString(head.SSEKMSKeyId))
			}
			onDiskBytes, err := os.ReadFile(onDisk(s, obj.Key))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(onDiskBytes, msg) {
				t.Errorf("file on disk = %q, want the plain bytes %q", onDiskBytes, msg)
			}
		})
	}
}

func TestConfigIsChecked(t *testing.T) {
	good := objstore.Config{
		Endpoint:  "http://127.0.0.1:7070",
		Region:    "us-east-1",
		Bucket:    "carebook-dev",
		AccessKey: "AK",
		SecretKey: "sk-never-echoed",
		PathStyle: true,
	}
	tests := []struct {
		name   string
		change func(*objstore.Config)
		want   string // substring of the error; "" means valid
	}{
		{name: "local gateway", change: func(c *objstore.Config) {}},
		{name: "AWS without an endpoint", change: func(c *objstore.Config) { c.Endpoint, c.PathStyle = "", false }},
		{name: "https endpoint", change: func(c *objstore.Config) { c.Endpoint = "https://s3.example.test" }},
		{name: "SSE-S3", change: func(c *objstore.Config) { c.SSE = objstore.SSES3 }},
		{name: "SSE-KMS default key", change: func(c *objstore.Config) { c.SSE = objstore.SSEKMS }},
		{name: "SSE-KMS named key", change: func(c *objstore.Config) { c.SSE, c.KMSKeyID = objstore.SSEKMS, "alias/x" }},
		{name: "endpoint without scheme", change: func(c *objstore.Config) { c.Endpoint = "127.0.0.1:7070" }, want: "endpoint"},
		{name: "endpoint of another scheme", change: func(c *objstore.Config) { c.Endpoint = "ftp://127.0.0.1" }, want: "endpoint"},
		{name: "endpoint with credentials", change: func(c *objstore.Config) { c.Endpoint = "http://u:p@127.0.0.1:7070" }, want: "endpoint"},
		{name: "no region", change: func(c *objstore.Config) { c.Region = "" }, want: "region"},
		{name: "no bucket", change: func(c *objstore.Config) { c.Bucket = "" }, want: "bucket"},
		{name: "upper-case bucket", change: func(c *objstore.Config) { c.Bucket = "Carebook" }, want: "bucket"},
		{name: "short bucket", change: func(c *objstore.Config) { c.Bucket = "cb" }, want: "bucket"},
		{name: "bucket with a slash", change: func(c *objstore.Config) { c.Bucket = "care/book" }, want: "bucket"},
		{name: "no access key", change: func(c *objstore.Config) { c.AccessKey = "" }, want: "access key"},
		{name: "no secret key", change: func(c *objstore.Config) { c.SecretKey = "" }, want: "secret key"},
		{name: "unknown SSE", change: func(c *objstore.Config) { c.SSE = "aws:kms:dsse" }, want: "SSE"},
		{name: "KMS key without KMS", change: func(c *objstore.Config) { c.SSE, c.KMSKeyID = objstore.SSES3, "alias/x" }, want: "KMS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.change(&cfg)
			s, err := objstore.New(cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.want == "" && s == nil:
				t.Fatal("New returned no store")
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("New err = %v, want one about %s", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "never-echoed") {
				t.Errorf("error %q echoes the secret", err)
			}
		})
	}
}
