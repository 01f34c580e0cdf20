// Package versitygw runs the Versity S3 Gateway (Apache-2.0) with its posix
// backend as a local process on loopback, for tests and for `carebook dev`.
//
// Each [Start] gets a fresh port on 127.0.0.1 and fresh random root
// credentials, so two servers on one machine never share either, and a
// process that does not know the keys cannot use the store. The gateway
// keeps buckets as folders under the directory it is given and the S3
// metadata of each object (content type, checksums, ETag) in extended
// attributes of its file, so everything it writes stays in that directory;
// the filesystem must support user extended attributes (ext4, xfs and btrfs
// do), which the gateway checks when it starts.
package versitygw

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/carebook/carebook/internal/gobin"
	"github.com/carebook/carebook/internal/peer"
)

// Install is the command that builds the binary this package looks for.
const Install = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Region is the region the gateway is started with. It only has to match
// what clients sign with; the gateway stores nothing per region.
const Region = "us-east-1"

// startTimeout bounds how long Start waits for a gateway to answer. It
// starts in well under a second on a laptop; the margin is for a loaded CI
// machine.
const startTimeout = 30 * time.Second

// portAttempts is how many free ports Start tries. The port is found free
// and then handed to the child, so another process can take it in between;
// that is rare, and one more attempt on another port cures it.
const portAttempts = 3

// Binary finds versitygw on PATH or in $GOPATH/bin (where `go install`
// puts it).
func Binary() (string, error) { return gobin.Find("versitygw", Install) }

// Server is a running gateway. Point an S3 client at Endpoint with path-style
// addressing, AccessKey and SecretKey as static credentials, and Region.
type Server struct {
	Endpoint  string // e.g. http://127.0.0.1:40123
	AccessKey string
	SecretKey string
	Region    string
	// Dir is the absolute path of the posix backend's root: bucket b's
	// object k is the file Dir/b/k.
	Dir string

	proc *peer.Proc
	cmd  *exec.Cmd
}

// Start runs versitygw with its posix backend rooted at dir (created if
// missing) on a free port of 127.0.0.1, and returns once the gateway answers
// an authenticated S3 request. The process is killed if this process dies.
//
// Only the S3 listener is opened: its admin API shares that port, and the
// web UI, website endpoint and pprof stay off. Settings the gateway would
// read from VGW_* and root-account variables in this process's environment
// are not passed on, so none of them can open another listener.
func Start(ctx context.Context, dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("versitygw: create root: %w", err)
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("versitygw: root: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	return peer.Retry(portAttempts, func() (*Server, error) { return start(ctx, bin, root) })
}

func start(ctx context.Context, bin, root string) (*Server, error) {
	port, err := peer.FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		AccessKey: randomKey(10), // 20 characters, like an AWS access key ID
		SecretKey: randomKey(20), // 40 characters, like an AWS secret key
		Region:    Region,
		Dir:       root,
	}
	cmd := exec.Command(bin,
		"--port", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		"--region", s.Region,
		"--quiet",
		"posix", root,
	)
	cmd.Dir = root
	// The keys go in the environment rather than on the command line, where
	// any local user could read them from the process list; settings the
	// gateway would read from its own variables are not passed on, so the
	// listeners and accounts are the ones chosen here.
	cmd.Env = append(peer.Env(os.Environ(), "VGW_*", "ROOT_*", "LOGFILE", "WEBHOOK"),
		"ROOT_ACCESS_KEY_ID="+s.AccessKey,
		"ROOT_SECRET_ACCESS_KEY="+s.SecretKey,
	)
	// The gateway dies with its parent, so no stray gateway outlives a
	// test run or a dev session.
	proc, err := peer.Start(ctx, "versitygw", cmd, s.ready)
	if err != nil {
		return nil, err
	}
	s.proc, s.cmd = proc, cmd
	return s, nil
}

// ready answers whether a signed ListBuckets succeeds. Signing with this
// start's keys proves the answer comes from this gateway, not from some
// other server that took the port.
func (s *Server) ready(ctx context.Context) error {
	client := s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		// One try per poll; peer.Start's loop is the retry.
		RetryMaxAttempts: 1,
	})
	callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := client.ListBuckets(callCtx, &s3.ListBucketsInput{})
	return err
}

// Stop ends the process and waits for it. It is safe to call more than
// once, and on a nil Server.
func (s *Server) Stop() {
	if s == nil {
		return
	}
	// SIGTERM lets the gateway close its listeners; each object is
	// published by an atomic rename, so a kill loses nothing either.
	s.proc.Stop()
}

// randomKey returns n random bytes as upper-case hex.
func randomKey(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux (crypto/rand docs)
	return strings.ToUpper(hex.EncodeToString(b))
}
