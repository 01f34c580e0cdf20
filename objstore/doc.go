// Package objstore keeps Carebook's files in an S3-compatible object store:
// the raw HL7 v2 and FHIR messages lab partners send, the report PDFs made
// from them, settlement reports, and (later) data-subject exports and
// archived records. Patient data lives here as much as in Postgres, so the
// package's job is to make the tenant boundary and the integrity of every
// object hard to get wrong.
//
// # Where things are
//
// All tenants share one bucket ([Config].Bucket). Every key starts with the
// tenant's prefix and names a kind, a short lowercase label for what the
// object is:
//
//	tenants/<tenant uuid>/<kind>/<sha256 hex>   content-addressed, from Put
//	tenants/<tenant uuid>/<kind>/<name>         named, from PutKey
//
// For example tenants/6f1c…/hl7/9b2e… (64 hex digits) for a raw lab message
// and tenants/6f1c…/settlement/2026-12-01.json for a day's settlement. A
// kind may have more than one segment ("lab-pdf/2026"). [Store.Put] names
// an object after the SHA-256 of its bytes, so storing the same message
// twice (a retried activity, a partner resending) leaves one object, and
// the key alone says what the bytes must be. [Store.PutKey] is for the few
// things that need a predictable name; it replaces what was there.
//
// Keys appear in server logs and in presigned URLs: they hold IDs, kinds,
// dates and hashes, never patient data.
//
// # Tenant isolation
//
// Every call takes the tenant it acts for and refuses, before any request
// is sent, a key outside that tenant's prefix ([ErrForeignKey]) or a
// malformed one: "." or ".." segments, empty segments, non-printable
// characters ([ErrInvalid]). Knowing another tenant's key is therefore not
// enough to read it, link to it or delete it through this package. The
// store's own credentials can reach every tenant's objects; the prefix check
// is this package's, not the server's.
//
// # Integrity
//
// Uploads carry the SHA-256 of the body (x-amz-checksum-sha256); the server
// recomputes it, refuses the upload on a mismatch, and records it. [Store.Get]
// rehashes what it reads and returns [ErrCorrupt] when the bytes do not
// match a content-addressed key's name or the checksum recorded at upload,
// so damage on disk or on the way back is reported, not returned.
//
// # Encryption at rest
//
// [Config].SSE asks the server to encrypt each object it writes: "AES256"
// (SSE-S3, keys managed by the store) or "aws:kms" (SSE-KMS, with
// [Config].KMSKeyID or the account's default key). On AWS S3 this is real
// encryption at rest, and with SSE-KMS every read is also a KMS decrypt that
// CloudTrail records; production should use SSE-KMS with a key per
// environment, and a bucket policy that refuses unencrypted puts.
//
// versitygw, which `carebook dev` and the tests run, does not encrypt: its
// posix backend writes plain files under its root directory. It accepts
// the SSE headers on PutObject (SSE-S3, and SSE-KMS with or without a key
// ID) and ignores them: the upload succeeds, the file on disk holds the
// plain bytes, and HeadObject reports no encryption (TestSSEOnVersitygw
// pins this down). So the same configuration runs against both, but on a
// laptop or a self-hosted gateway encryption at rest has to come from the
// disk (LUKS, an encrypted volume), and dev data must never be real
// patient data.
//
// # Presigned downloads
//
// [Store.PresignGet] makes a short-lived URL (5 minutes by default, never
// more than 15) that downloads one object as an attachment with a given
// file name and Cache-Control no-store, so the api can hand a patient their
// report without streaming it through the api. Whoever holds the URL can
// fetch it until it expires: hand it only to the user who asked, over TLS.
//
// # Errors
//
// Errors wrap the sentinel kinds with context (operation and key) and never
// contain object bytes. Invalid keys are not echoed, since they may come
// from a request.
package objstore
