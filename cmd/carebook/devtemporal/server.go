package devtemporal

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	// clusterName names the only cluster. It is stored in the SQLite file
	// with every namespace, so changing it orphans existing data.
	clusterName = "active"

	// storeName is the key of the one data store in the persistence config;
	// executions and visibility share the file.
	storeName = "sqlite"

	// namespaceRetention is how long closed workflows stay visible in the
	// UI: a week covers "what happened to yesterday's test booking" without
	// letting the file grow without bound.
	namespaceRetention = 7 * 24 * time.Hour

	// noUI is the Config.UIPort value that disables the UI.
	noUI = -1
)

// ports are the TCP ports one server run listens on.
type ports struct {
	frontend int
	http     int // the frontend's HTTP API
	history  int
	matching int
	worker   int
	ui       int // noUI when disabled
}

// pickPorts resolves the configured ports and picks free ones for the
// internal services. Membership needs no port: the services find each other
// through a static host list (see serverOptions), not ringpop gossip.
//
// A picked port is free when picked, not when the server binds it; another
// program could take it in between. Start then fails and can be retried.
func pickPorts(cfg Config) (ports, error) {
	p := ports{frontend: cfg.FrontendPort, ui: cfg.UIPort}
	var err error
	pick := func(ip string, port *int) {
		if err == nil && *port == 0 {
			*port, err = freePort(ip)
		}
	}
	pick(cfg.IP, &p.frontend)
	pick(cfg.IP, &p.http)
	pick(defaultIP, &p.history)
	pick(defaultIP, &p.matching)
	pick(defaultIP, &p.worker)
	pick(cfg.IP, &p.ui)
	if err != nil {
		return ports{}, fmt.Errorf("devtemporal: pick ports: %w", err)
	}
	return p, nil
}

// freePort asks the kernel for an unused port on ip.
func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// checkFree reports an error if port on ip cannot be listened on now.
func checkFree(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

// sqliteConfig opens path read-write, creating it if missing ("rwc"). The
// plugin's defaults of one connection and SQLite's rollback journal are
// kept: a single connection cannot hit "database is locked", and a dev
// server's load is far below what one connection handles.
func sqliteConfig(path string) *config.SQL {
	return &config.SQL{
		PluginName:        sqliteplugin.PluginName,
		DatabaseName:      path,
		ConnectAttributes: map[string]string{"mode": "rwc"},
	}
}

// prepareDatabase creates the schema when the file at path does not exist
// yet, and registers namespace when it is missing. An existing file is used
// as it is, so its workflows survive.
//
// The namespace is written straight into the database before the server
// starts, as the Temporal CLI does, rather than registered over gRPC
// afterwards: the server then loads it at start-up instead of after a
// namespace-cache refresh, and Start can return as soon as the frontend
// answers.
func prepareDatabase(sqlCfg *config.SQL, path, namespace string) error {
	_, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
			// Leave no half-built file behind, or the next Start would
			// take it for a good one.
			_ = os.Remove(path)
			return fmt.Errorf("devtemporal: create schema in %s: %w", path, err)
		}
	case err != nil:
		return fmt.Errorf("devtemporal: open database: %w", err)
	}

	ns, err := sqliteschema.NewNamespaceConfig(clusterName, namespace, false, nil)
	if err != nil {
		return fmt.Errorf("devtemporal: namespace %q: %w", namespace, err)
	}
	ns.Detail.Config.Retention = durationpb.New(namespaceRetention)
	// CreateNamespaces leaves an existing namespace, and its retention, as is.
	if err := sqliteschema.CreateNamespaces(sqlCfg, ns); err != nil {
		return fmt.Errorf("devtemporal: register namespace %q: %w", namespace, err)
	}
	return nil
}

// serverOptions builds a single-node server on sqlCfg, listening on p.
// stopping quiets the server's warnings once set (see serverLogger).
func serverOptions(cfg Config, p ports, sqlCfg *config.SQL, stopping *atomic.Bool) []temporal.ServerOption {
	frontend := dialAddr(cfg.IP, p.frontend)
	conf := &config.Config{
		Persistence: config.Persistence{
			DefaultStore:    storeName,
			VisibilityStore: storeName,
			// One shard is all one process needs, and the count is fixed
			// in the file once written.
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{storeName: {SQL: sqlCfg}},
		},
		// Failover versions only matter when clusters replicate; these are
		// the customary values for a lone cluster.
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {
					Enabled:                true,
					InitialFailoverVersion: 1,
					RPCAddress:             frontend,
					HTTPAddress:            dialAddr(cfg.IP, p.http),
				},
			},
		},
		// There is no other cluster to redirect to.
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			string(primitives.FrontendService): frontendService(cfg.IP, p.frontend, p.http),
			string(primitives.HistoryService):  service(defaultIP, p.history),
			string(primitives.MatchingService): service(defaultIP, p.matching),
			string(primitives.WorkerService):   service(defaultIP, p.worker),
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{
			Archival: config.ArchivalNamespaceDefaults{
				History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
				Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
			},
		},
		// The worker service (system workflows such as the scanner) dials
		// the frontend like any SDK client.
		PublicClient: config.PublicClient{HostPort: frontend},
	}
	// Global.Metrics stays nil, which gives a no-op metrics handler and no
	// Prometheus listener; Global.PProf.Port stays 0, which disables pprof.

	host := func(port int) static.Hosts {
		return static.SingleLocalHost(net.JoinHostPort(defaultIP, strconv.Itoa(port)))
	}
	return []temporal.ServerOption{
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		// A fixed host list instead of ringpop: nothing to gossip with on
		// one node, no membership ports, and no join delay at start-up.
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: host(p.frontend),
			primitives.HistoryService:  host(p.history),
			primitives.MatchingService: host(p.matching),
			primitives.WorkerService:   host(p.worker),
		}),
		temporal.WithLogger(newServerLogger(cfg.Logger, stopping)),
		temporal.WithDynamicConfigClient(devDynamicConfig()),
		// No authentication: every caller on the bound address is admin.
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper {
			return authorization.NewNoopClaimMapper()
		}),
	}
}

// frontendService binds the frontend's gRPC port and its HTTP API on ip.
// The HTTP API, as in `temporal server start-dev`, is what Nexus calls
// arrive on; without it the server warns at every start that Nexus is off.
func frontendService(ip string, grpcPort, httpPort int) config.Service {
	svc := service(ip, grpcPort)
	svc.RPC.HTTPPort = httpPort
	return svc
}

// service binds one server service's gRPC port on ip.
func service(ip string, port int) config.Service {
	return config.Service{RPC: config.RPC{GRPCPort: port, BindOnIP: ip}}
}

// devDynamicConfig holds the values that differ from the server's defaults.
// Everything else keeps the production default, so workflows behave here
// as they will in production.
func devDynamicConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		// The server otherwise reports its version to Temporal's update
		// service at start-up and daily. A dev tool keeps to this machine.
		dynamicconfig.EnableServerVersionCheck.Key(): false,

		// The UI lists and counts workflows on every page and refresh; the
		// default of 10 visibility calls a second throttles it with a few
		// tabs open.
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,

		// Search attributes that carebook registers at start-up are usable
		// at once rather than after the cache's next refresh.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,

		// The default mutable-state cache (128k workflows) is sized for a
		// production host; 8k is plenty for a laptop and caps memory.
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 8192,
	}
}

// newUIServer builds the web UI, talking gRPC to frontend. Nothing runs
// until its Start.
func newUIServer(ip string, port int, frontend, namespace string) *uiserver.Server {
	// ui-server joins Host and Port with a bare colon, so an IPv6 address
	// needs its brackets here.
	if net.ParseIP(ip).To4() == nil {
		ip = "[" + ip + "]"
	}
	return uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                ip,
		Port:                port,
		TemporalGRPCAddress: frontend,
		EnableUI:            true,
		DefaultNamespace:    namespace,
		// The CSRF cookie must travel over plain HTTP; the dev UI has no
		// TLS. Auth stays off (the zero value), matching the server.
		CORS: uiconfig.CORS{CookieInsecure: true},
		// The UI would otherwise fetch news and release notes from
		// Temporal's servers; a dev tool keeps to this machine.
		DisableNewsFetch:   true,
		NotifyOnNewVersion: false,
		// Its access log repeats every browser request on stdout.
		HideLogs: true,
	}))
}
