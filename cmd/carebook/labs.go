package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/carebook/carebook/hl7"
	"github.com/carebook/carebook/intake"
	"github.com/carebook/carebook/mllp"
	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/objstore/versitygw"
)

// openStore connects to the object store and makes sure its bucket exists.
func openStore(ctx context.Context, c S3Config) (*objstore.Store, error) {
	if c.AccessKey == "" || c.SecretKey == "" {
		return nil, errors.New("CAREBOOK_S3_ACCESS_KEY and CAREBOOK_S3_SECRET_KEY are required (carebook dev runs its own store)")
	}
	store, err := objstore.New(objstore.Config{
		Endpoint: c.Endpoint, Region: c.Region, Bucket: c.Bucket, AccessKey: c.AccessKey, SecretKey: c.SecretKey,
		PathStyle: c.PathStyle, SSE: c.SSE, KMSKeyID: c.KMSKeyID,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := store.EnsureBucket(ctx); err != nil {
		return nil, fmt.Errorf("object store bucket %q: %w", c.Bucket, err)
	}
	return store, nil
}

// devStore runs a versitygw S3 gateway over dataDir/objects for dev, unless
// CAREBOOK_S3_ENDPOINT names a store to use instead.
func devStore(ctx context.Context, cfg *Config) (*objstore.Store, func(), error) {
	if cfg.S3.Endpoint != "" {
		store, err := openStore(ctx, cfg.S3)
		return store, func() {}, err
	}
	gw, err := versitygw.Start(ctx, filepath.Join(cfg.DataDir, "objects"))
	if err != nil {
		return nil, nil, fmt.Errorf("start the local object store (%s, or `make tools`): %w", versitygw.Install, err)
	}
	cfg.S3.Endpoint, cfg.S3.Region, cfg.S3.AccessKey, cfg.S3.SecretKey, cfg.S3.PathStyle =
		gw.Endpoint, gw.Region, gw.AccessKey, gw.SecretKey, true
	store, err := openStore(ctx, cfg.S3)
	if err != nil {
		gw.Stop()
		return nil, nil, err
	}
	// The gateway's address and keys change at every start: leave them in
	// the data folder while it runs, so that `audit verify` beside dev can
	// check the archive and the anchors too.
	settings := filepath.Join(cfg.DataDir, devS3File)
	if err := writeDevS3(settings, cfg.S3); err != nil {
		gw.Stop()
		return nil, nil, err
	}
	return store, func() { os.Remove(settings); gw.Stop() }, nil
}

// devS3File holds a running dev's object store settings, in its data
// folder, readable by its owner only.
const devS3File = "s3.json"

func writeDevS3(path string, c S3Config) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// readDevS3 returns the object store settings of the dev running on
// cfg's data folder, if one is.
func readDevS3(cfg Config) (S3Config, bool) {
	var c S3Config
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, devS3File))
	if err != nil || json.Unmarshal(b, &c) != nil || c.AccessKey == "" {
		return S3Config{}, false
	}
	return c, true
}

// serveMLLP takes HL7 v2 messages over MLLP on ln until ctx ends, then
// lets messages being stored finish.
func serveMLLP(ctx context.Context, ln net.Listener, in *intake.Intake, logger *slog.Logger) error {
	log := logger.With("component", "mllp")
	srv := &mllp.Server{Handler: in.MLLPHandler(log, nil), Logger: log}
	log.Info("mllp listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve mllp: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// listenMLLP opens the MLLP listener unless it is turned off.
func listenMLLP(addr string) (net.Listener, error) {
	if addr == "" || addr == "off" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for MLLP on %s (set CAREBOOK_MLLP_ADDR, or off): %w", addr, err)
	}
	return ln, nil
}

// runSendHL7 sends HL7 v2 files over MLLP, one message at a time, and
// prints each acknowledgment's code, the original control ID and, for AE
// and AR, the reason: `carebook send-hl7 [-addr host:port] FILE...`.
func runSendHL7(ctx context.Context, cfg Config, _ *slog.Logger) error {
	args := os.Args[2:]
	addr := cfg.MLLPAddr
	if len(args) >= 2 && args[0] == "-addr" {
		addr, args = args[1], args[2:]
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		return errors.New("usage: carebook send-hl7 [-addr host:port] FILE... (prints AA, AE or AR per message; exits 1 unless every message is AA)")
	}
	c, err := mllp.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	failed := 0
	for _, name := range args {
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		for i, msg := range mllp.SplitBatch(data) {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			ack, err := c.Send(sctx, msg)
			cancel()
			if err != nil {
				return fmt.Errorf("%s message %d: %w", name, i+1, err)
			}
			code, text := ackSummary(ack)
			if code != string(hl7.AckAccept) {
				failed++
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", code, filepath.Base(name), text)
		}
	}
	if failed > 0 {
		w.Flush()
		return fmt.Errorf("%d message(s) not accepted", failed)
	}
	return nil
}

// ackSummary reads MSA-1 and MSA-3 of an acknowledgment.
func ackSummary(ack []byte) (string, string) {
	m, err := hl7.Parse(ack)
	if err != nil {
		return "??", "unreadable acknowledgment: " + string(bytes.TrimSpace(ack))
	}
	msa := m.Segment("MSA")
	if msa == nil {
		return "??", "acknowledgment without MSA"
	}
	return msa.Field(1).Value(), msa.Field(3).Value()
}
