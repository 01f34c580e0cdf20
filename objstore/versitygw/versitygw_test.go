package versitygw

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// startT runs a gateway for one test; a missing binary fails the test with
// the install command.
func startT(t *testing.T, dir string) *Server {
	t.Helper()
	s, err := Start(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func client(s *Server, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:           s.Region,
		BaseEndpoint:     aws.String(s.Endpoint),
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider(s.AccessKey, secret, ""),
		RetryMaxAttempts: 1,
	})
}

// listeners lists the TCP addresses process pid listens on, from its file
// descriptors and the kernel's socket tables.
func listeners(t *testing.T, pid int) []string {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if inode, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	var out []string
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			const listen = "0A"
			if len(fields) < 10 || fields[3] != listen || !inodes[fields[9]] {
				continue
			}
			out = append(out, procAddr(t, fields[1]))
		}
		f.Close()
	}
	return out
}

// procAddr decodes a /proc/net/tcp address: the IP as host-order 32-bit
// words in hex, then the port in hex.
func procAddr(t *testing.T, s string) string {
	t.Helper()
	ipHex, portHex, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(ipHex)
	if err != nil {
		t.Fatal(err)
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		ip[i], ip[i+1], ip[i+2], ip[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))
}

func TestStart(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "not", "there", "yet")
	s := startT(t, dir)

	u, err := url.Parse(s.Endpoint)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" {
		t.Fatalf("endpoint %q, want http://127.0.0.1:<port>", s.Endpoint)
	}
	if got := listeners(t, s.cmd.Process.Pid); len(got) != 1 || got[0] != u.Host {
		t.Fatalf("gateway listens on %q, want only %s", got, u.Host)
	}
	if len(s.AccessKey) != 20 || len(s.SecretKey) != 40 || s.Region != Region {
		t.Fatalf("credentials %d/%d characters, region %q", len(s.AccessKey), len(s.SecretKey), s.Region)
	}

	if _, err := client(s, s.SecretKey).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("probe")}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "probe")); err != nil || !fi.IsDir() {
		t.Fatalf("bucket is not a folder under the root: %v", err)
	}
	if s.Dir != dir {
		t.Errorf("Dir = %q, want %q", s.Dir, dir)
	}

	_, err = client(s, "wrong-secret").ListBuckets(ctx, &s3.ListBucketsInput{})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "SignatureDoesNotMatch" {
		t.Fatalf("ListBuckets with a wrong secret: err = %v, want SignatureDoesNotMatch", err)
	}
}

func TestEachStartHasItsOwnPortAndKeys(t *testing.T) {
	a := startT(t, t.TempDir())
	b := startT(t, t.TempDir())
	if a.Endpoint == b.Endpoint || a.AccessKey == b.AccessKey || a.SecretKey == b.SecretKey {
		t.Fatalf("two gateways share an endpoint or keys: %s %s", a.Endpoint, b.Endpoint)
	}
	_, err := client(b, a.SecretKey).ListBuckets(context.Background(), &s3.ListBucketsInput{})
	if err == nil {
		t.Fatal("one gateway's secret opens the other")
	}
}

// The gateway reads most of its settings from VGW_* variables; none in
// this process's environment may open a listener or change the account.
func TestStartIgnoresGatewayEnvironment(t *testing.T) {
	t.Setenv("VGW_WEBUI_PORT", "127.0.0.1:0")
	t.Setenv("VGW_ADMIN_PORT", "127.0.0.1:0")
	t.Setenv("VGW_PPROF", "127.0.0.1:0")
	t.Setenv("VGW_WEBSITE_PORT", "127.0.0.1:0")
	t.Setenv("VGW_READ_ONLY", "true")
	t.Setenv("ROOT_ACCESS_KEY", "inherited")
	t.Setenv("ROOT_SECRET_KEY", "inherited-secret")
	s := startT(t, t.TempDir())

	u, _ := url.Parse(s.Endpoint)
	if got := listeners(t, s.cmd.Process.Pid); len(got) != 1 || got[0] != u.Host {
		t.Fatalf("gateway listens on %q, want only %s", got, u.Host)
	}
	if _, err := client(s, s.SecretKey).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("writable")}); err != nil {
		t.Fatalf("gateway took a setting from the environment: %v", err)
	}
}

func TestStop(t *testing.T) {
	s := startT(t, t.TempDir())
	u, _ := url.Parse(s.Endpoint)
	s.Stop()
	s.Stop() // idempotent
	if s.cmd.ProcessState == nil {
		t.Fatal("Stop returned before the process was reaped")
	}
	if c, err := net.Dial("tcp", u.Host); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", u.Host)
	}
	var nilServer *Server
	nilServer.Stop()
}

func TestBinaryMissingNamesTheInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("GOPATH", t.TempDir())
	_, err := Binary()
	if err == nil || !strings.Contains(err.Error(), Install) {
		t.Fatalf("err = %v, want one naming %q", err, Install)
	}
	if _, err := Start(context.Background(), t.TempDir()); err == nil || !strings.Contains(err.Error(), Install) {
		t.Fatalf("Start err = %v, want one naming %q", err, Install)
	}
}

// childEnvVar makes the test binary act as a parent that starts a gateway,
// prints its pid and waits to be killed.
const childEnvVar = "VERSITYGW_TEST_PARENT_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnvVar); dir != "" {
		s, err := Start(context.Background(), dir)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(s.cmd.Process.Pid)
		select {}
	}
	os.Exit(m.Run())
}

func TestGatewayDiesWithItsParent(t *testing.T) {
	if _, err := Binary(); err != nil {
		t.Fatal(err)
	}
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), childEnvVar+"="+t.TempDir())
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = parent.Process.Kill(); _ = parent.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("parent printed no pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("parent said %q", line)
	}
	if !alive(pid) {
		t.Fatal("gateway not running before its parent is killed")
	}

	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	// The kernel delivers SIGKILL to the gateway as its parent exits; the
	// deadline only bounds a broken run.
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatal("gateway outlived its parent")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid is a process that has not exited (a zombie
// waiting to be reaped counts as gone).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z' && stat[i+2] != 'X'
}
