package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	gometrics "github.com/hashicorp/go-metrics/compat"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/controller"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/raftnode"
)

const serverHelp = `
Runs one claim-store node: a raft member (bolt stores and snapshots under
--data-dir), the controller (which acts while this node leads), and the HTTP API
with /metrics, /healthz and /readyz.

Start the first node with --bootstrap; start the others with --join pointing at
any running node's API (host:port or its base URL). A node restarted on its data dir needs neither (it
rejoins as the member it was), but --join again is harmless.

Without any --token, --token-file or --worker-token-key the API is
unauthenticated and must listen on a loopback address. A worker token acts only
for the worker it names (--token w1:worker:SECRET); with --worker-token-key,
'baton token issue' derives a token for any worker without a restart. Without
--raft-tls-cert, --raft-tls-key and --raft-tls-ca the raft port is
unauthenticated too and must listen on and advertise loopback addresses, unless
--raft-insecure is given. SIGINT or SIGTERM stops the node gracefully (a leader
hands leadership over first) within --shutdown-timeout.

Example:
  baton server --id n1 --bootstrap
  baton server --id n2 --raft-addr 127.0.0.1:7002 --http-addr 127.0.0.1:7102 --join http://127.0.0.1:7101`

// serverFlags maps `baton server` flags one to one onto the node's configs.
type serverFlags struct {
	id, dataDir             string
	raftAddr, raftAdvertise string
	httpAddr, httpAdvertise string
	bootstrap               bool
	join                    stringList
	joinToken               string
	tokens                  stringList
	tokenFile               string
	workerTokenKey          string
	tlsCert, tlsKey, tlsCA  string
	httpCert, httpKey       string
	httpCA                  string
	shutdownTimeout         time.Duration
	logs                    logFlags
	raft                    raftnode.Config
	ctrl                    controller.Config
	api                     server.Config
	auditMaxEvents          int
	auditMaxAge             time.Duration
}

func (s *serverFlags) register(f *flagSet) {
	s.raft = raftnode.DefaultConfig()
	s.ctrl = controller.DefaultConfig()
	f.StringVar(&s.id, "id", "", "this node's stable id (required)")
	f.StringVar(&s.dataDir, "data-dir", "", "directory for the raft log, snapshots and audit log (default ./data/<id>)")
	f.StringVar(&s.raftAddr, "raft-addr", "127.0.0.1:7001", "raft listen address host:port (port 0 picks a free one)")
	f.StringVar(&s.raftAdvertise, "raft-advertise", "", "raft address other nodes dial (default: the bound --raft-addr)")
	f.StringVar(&s.httpAddr, "http-addr", "127.0.0.1:7101", "HTTP API listen address host:port (port 0 picks a free one);\nmust be loopback unless tokens are configured")
	f.StringVar(&s.httpAdvertise, "http-advertise", "", "API base URL other nodes and clients use (default http://<bound --http-addr>)")
	f.BoolVar(&s.bootstrap, "bootstrap", false, "make this node a one-node cluster if it has no raft state yet")
	f.Var(&s.join, "join", "join the cluster through these nodes' APIs (`ADDR[,ADDR]`), retrying until it works;\n"+
		"each ADDR a base URL (http://host:port, https://host:port) or host:port, which means\n"+
		"https:// when this node serves its API over TLS (--http-tls-cert), http:// otherwise")
	f.StringVar(&s.joinToken, "join-token", "", "bearer token (operator role) for --join (default: the first operator --token)")
	f.Var(&s.tokens, "token", "accepted bearer token `name:role:secret`, role read|worker|operator (repeatable);\n"+
		"a worker token is named after the worker it acts for (w1:worker:SECRET); read and operator\n"+
		"tokens may omit the name (role:secret)")
	f.StringVar(&s.tokenFile, "token-file", "", `JSON file of accepted tokens: {"tokens": [{"name": "ci", "role": "operator", "token": "..."},`+"\n"+
		`{"role": "worker", "worker": "w1", "token": "..."}]} ("worker" is required for role worker)`)
	f.StringVar(&s.workerTokenKey, "worker-token-key", "", "file holding the key of derived worker tokens (hex, from 'baton token new-key');\n"+
		"the server then also accepts 'baton token issue --worker W' tokens, each for its worker only")
	f.StringVar(&s.tlsCert, "raft-tls-cert", "", "PEM certificate of this node for mutual TLS between nodes")
	f.StringVar(&s.tlsKey, "raft-tls-key", "", "PEM private key for --raft-tls-cert")
	f.StringVar(&s.tlsCA, "raft-tls-ca", "", "PEM CA bundle that signs every node's certificate")
	f.BoolVar(&s.raft.InsecureRaft, "raft-insecure", false, "allow raft without TLS on a non-loopback --raft-addr or --raft-advertise:\n"+
		"anyone who reaches the raft port can act as a cluster member (use only on a network you trust)")
	f.StringVar(&s.httpCert, "http-tls-cert", "", "PEM certificate: serve the API over HTTPS")
	f.StringVar(&s.httpKey, "http-tls-key", "", "PEM private key for --http-tls-cert")
	f.StringVar(&s.httpCA, "http-tls-ca", "", "PEM CA bundle trusted when this node calls other nodes' HTTPS APIs\n(forwarding to the leader, --join); default: the system roots")
	// Every duration and size below is range-checked as it is parsed: a value
	// out of range is a usage error, never silently the default. Relations
	// between flags (session TTL against heartbeats, lease against heartbeat
	// timeout) are checked by the components' Validate.
	f.positiveDurationVar(&s.ctrl.SessionTTL, "session-ttl", s.ctrl.SessionTTL, "a worker whose heartbeats stop this long is expired; its partitions fail over")
	f.positiveDurationVar(&s.ctrl.HeartbeatInterval, "heartbeat-interval", s.ctrl.HeartbeatInterval, "heartbeat interval workers are told to use (session TTL must cover 3)")
	f.durationVar(&s.ctrl.DrainTimeout, "drain-timeout", s.ctrl.DrainTimeout, 1, fsm.MaxDrainTimeout,
		"drain deadline of handoffs (controller's and operator moves' default);\nafter it the handoff is force-committed from the last checkpoint")
	f.durationVar(&s.ctrl.StabilizationWindow, "stabilization-window", s.ctrl.StabilizationWindow, 0, noMax,
		"wait this long after membership changes before claiming and rebalancing (0: act at once)")
	f.intVar(&s.ctrl.MaxHandoffs, "max-handoffs", s.ctrl.MaxHandoffs, 1, math.MaxInt, "pending handoffs cluster-wide at most")
	f.intVar(&s.ctrl.MaxHandoffsPerWorker, "max-handoffs-per-worker", s.ctrl.MaxHandoffsPerWorker, 1, math.MaxInt,
		"handoff window: pending handoffs into or out of one worker that every worker starts with;\n"+
			"it widens as the worker's handoffs complete, up to --max-handoffs-per-worker-ceiling")
	f.intVar(&s.ctrl.MaxHandoffsPerWorkerCeiling, "max-handoffs-per-worker-ceiling", s.ctrl.MaxHandoffsPerWorkerCeiling, 1, math.MaxInt,
		"the widest a worker's handoff window grows (equal to --max-handoffs-per-worker: a fixed window)")
	f.positiveDurationVar(&s.ctrl.SlowHandoff, "slow-handoff", s.ctrl.SlowHandoff,
		"a handoff not active under its new owner after this halves its workers' handoff windows")
	f.positiveDurationVar(&s.ctrl.Tick, "controller-tick", s.ctrl.Tick, "how often the controller checks session expiry and drain deadlines")
	// The raft minimums are hashicorp/raft's (raft.ValidateConfig): below them
	// the node would fail to start with an error that names no flag.
	f.durationVar(&s.raft.HeartbeatTimeout, "raft-heartbeat-timeout", s.raft.HeartbeatTimeout, 5*time.Millisecond, noMax, "raft heartbeat timeout")
	f.durationVar(&s.raft.ElectionTimeout, "raft-election-timeout", s.raft.ElectionTimeout, 5*time.Millisecond, noMax,
		"raft election timeout (at least the heartbeat timeout)")
	f.durationVar(&s.raft.LeaderLeaseTimeout, "raft-leader-lease-timeout", s.raft.LeaderLeaseTimeout, 5*time.Millisecond, noMax,
		"raft leader lease timeout (at most the heartbeat timeout)")
	f.durationVar(&s.raft.CommitTimeout, "raft-commit-timeout", s.raft.CommitTimeout, time.Millisecond, noMax, "raft commit timeout")
	f.durationVar(&s.raft.SnapshotInterval, "snapshot-interval", s.raft.SnapshotInterval, 5*time.Millisecond, noMax, "how often raft considers a snapshot")
	f.uint64Var(&s.raft.SnapshotThreshold, "snapshot-threshold", s.raft.SnapshotThreshold, 1, math.MaxUint64, "log entries since the last snapshot that trigger one")
	f.uint64Var(&s.raft.TrailingLogs, "trailing-logs", s.raft.TrailingLogs, 0, math.MaxUint64,
		"log entries kept after a snapshot (0: none; a follower that falls behind then needs a snapshot install)")
	f.intVar(&s.raft.SnapshotRetain, "snapshot-retain", s.raft.SnapshotRetain, 1, math.MaxInt, "snapshots kept on disk")
	f.positiveDurationVar(&s.raft.ApplyTimeout, "apply-timeout", s.raft.ApplyTimeout, "bound of a raft apply or read without a deadline")
	f.durationVar(&s.raft.DigestInterval, "digest-interval", s.raft.DigestInterval, 10*time.Millisecond, noMax,
		"corruption check: how often the leader marks an index at which every node digests its state,\nand how often each node compares digests with the other nodes")
	f.StringVar(&s.api.PeerToken, "peer-token", "", "bearer token this node presents to the other nodes' APIs for the corruption check\n"+
		"(default: the least privileged of its own tokens, else one derived from --worker-token-key)")
	f.intVar(&s.auditMaxEvents, "audit-max-events", s.raft.Audit.MaxEvents, 1, math.MaxInt, "audit events retained (same on every node)")
	f.durationVar(&s.auditMaxAge, "audit-max-age", s.raft.Audit.MaxAge, 0, noMax, "age bound of retained audit events (0: none; same on every node)")
	// The API server's minimums (server.Config.Validate); 0 would silently
	// mean its default there, so it is refused here.
	f.int64Var(&s.api.MaxBodyBytes, "max-body-bytes", 4<<20, 1<<10, math.MaxInt64, "largest accepted request body, in bytes")
	f.durationVar(&s.api.MaxWait, "max-wait", 5*time.Minute, time.Second, noMax, "longest wait of a blocking query")
	f.positiveDurationVar(&s.shutdownTimeout, "shutdown-timeout", 20*time.Second, "bound of the graceful shutdown on SIGINT/SIGTERM")
	s.logs.register(f, "info")
}

// config turns the parsed flags into the node's configuration.
func (s *serverFlags) config(log *slog.Logger) (nodeConfig, error) {
	var errs []error
	if s.id == "" {
		errs = append(errs, errors.New("--id is required"))
	} else if err := fsm.CheckNodeID(s.id); err != nil {
		// A node whose id the state machine refuses could never register its
		// API address: once leader, followers could not forward to it.
		errs = append(errs, usageFromCheck("--id", err))
	}
	if len(s.httpAdvertise) > fsm.MaxAddrLen {
		// The address is recorded in the replicated state, which refuses
		// longer ones (and then nobody can forward to this node).
		errs = append(errs, fmt.Errorf("--http-advertise: %d bytes, at most %d", len(s.httpAdvertise), fsm.MaxAddrLen))
	}
	if s.bootstrap && len(s.join) > 0 {
		errs = append(errs, errors.New("--bootstrap and --join exclude each other"))
	}
	join, err := joinURLs(s.join, s.httpCert != "")
	if err != nil {
		errs = append(errs, err)
	}
	tokens, err := s.loadTokens()
	if err != nil {
		errs = append(errs, err)
	}
	var workerKey []byte
	if s.workerTokenKey != "" {
		if workerKey, err = server.LoadWorkerTokenKey(s.workerTokenKey); err != nil {
			errs = append(errs, fmt.Errorf("--worker-token-key: %w", err))
		}
	}
	if err == nil && len(tokens) == 0 && workerKey == nil {
		if err := requireLoopback(s.httpAddr); err != nil {
			errs = append(errs, err)
		}
	}
	tlsCfg, err := raftTLS(s.tlsCert, s.tlsKey, s.tlsCA)
	if err != nil {
		errs = append(errs, err)
	}
	httpTLS, peerTLS, err := apiTLS(s.httpCert, s.httpKey, s.httpCA)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nodeConfig{}, &exitError{code: 2, err: err}
	}
	rc := s.raft
	rc.NodeID = s.id
	rc.DataDir = s.dataDir
	if rc.DataDir == "" {
		rc.DataDir = filepath.Join("data", s.id)
	}
	rc.RaftAddr, rc.AdvertiseAddr = s.raftAddr, s.raftAdvertise
	rc.Bootstrap = s.bootstrap
	rc.TLS = tlsCfg
	rc.Audit.MaxEvents, rc.Audit.MaxAge = s.auditMaxEvents, s.auditMaxAge
	ac := s.api
	ac.Tokens = tokens
	ac.WorkerTokenKey = workerKey
	ac.DrainTimeout = s.ctrl.DrainTimeout
	ac.DigestCheckInterval = rc.DigestInterval
	if err := errors.Join(s.ctrl.Validate(), ac.Validate()); err != nil {
		return nodeConfig{}, &exitError{code: 2, err: err}
	}
	joinToken := s.joinToken
	if joinToken == "" {
		for _, t := range tokens {
			if t.Role == server.RoleOperator {
				joinToken = t.Secret
				break
			}
		}
	}
	return nodeConfig{
		Raft: rc, Controller: s.ctrl, API: ac,
		HTTPAddr: s.httpAddr, HTTPAdvertise: s.httpAdvertise, HTTPTLS: httpTLS, PeerTLS: peerTLS,
		Join: join, JoinToken: joinToken, Logger: log,
	}, nil
}

func (s *serverFlags) loadTokens() ([]server.Token, error) {
	var out []server.Token
	for _, t := range s.tokens {
		tok, err := server.ParseToken(t)
		if err != nil {
			return nil, fmt.Errorf("--token: %w", err)
		}
		out = append(out, tok)
	}
	if s.tokenFile != "" {
		more, err := server.LoadTokens(s.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		out = append(out, more...)
	}
	return out, nil
}

// joinURLs turns --join values into API base URLs: a URL stays as it is (it
// must be http(s)://host[:port] and nothing more, what api/client accepts);
// host:port gets http://, or https:// when this node's API uses TLS (the
// cluster's nodes then do too). Anything else is refused, naming the value, so
// that a bad flag stops the server at start instead of leaving it unjoined.
func joinURLs(addrs []string, tlsAPI bool) ([]string, error) {
	scheme := "http://"
	if tlsAPI {
		scheme = "https://"
	}
	var out []string
	var errs []error
	for _, a := range addrs {
		u, err := joinURL(a, scheme)
		if err != nil {
			errs = append(errs, fmt.Errorf("--join %q: %w", a, err))
			continue
		}
		out = append(out, u)
	}
	return out, errors.Join(errs...)
}

func joinURL(a, scheme string) (string, error) {
	bad := errors.New("want host:port or http(s)://host:port")
	if !strings.Contains(a, "://") {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			return "", bad
		}
		a = scheme + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(a)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" ||
		strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return "", bad
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if err := checkPort(p); err != nil {
			return "", err
		}
	}
	return u.Scheme + "://" + u.Host, nil
}

func checkPort(p string) error {
	if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("port %q: want 1 to 65535", p)
	}
	return nil
}

// requireLoopback refuses an unauthenticated API on anything but loopback.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--http-addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--http-addr %s is not a loopback address and no --token, --token-file or --worker-token-key is set: "+
		"refusing to serve an unauthenticated API beyond this machine (configure tokens, or listen on 127.0.0.1)", addr)
}

// raftTLS builds the mutual-TLS config of raft traffic, or nil if no file is
// given.
func raftTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" && caFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("--raft-tls-cert, --raft-tls-key and --raft-tls-ca go together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--raft-tls-cert/--raft-tls-key: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--raft-tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--raft-tls-ca %s: no PEM certificate found", caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS12,
	}, nil
}

// newRegistry returns the process's Prometheus registry with the Go runtime and
// process collectors, and bridges hashicorp raft's go-metrics into it.
func newRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sink, err := raftnode.NewMetricsSink(reg)
	if err != nil {
		return nil, err
	}
	cfg := gometrics.DefaultConfig("") // the sink names the metrics baton_raft_*
	cfg.EnableHostname = false
	cfg.EnableRuntimeMetrics = false // the Go collector already exports them
	if _, err := gometrics.NewGlobal(cfg, sink); err != nil {
		return nil, fmt.Errorf("raft metrics: %w", err)
	}
	return reg, nil
}

func runServer(args []string) error {
	f := newFlags("server", "baton server --id ID [--bootstrap | --join ADDR[,ADDR]] [flags]", serverHelp, 0, 0)
	var s serverFlags
	s.register(f)
	if _, err := f.parse(args); err != nil {
		return err
	}
	log, err := s.logs.logger(os.Stderr)
	if err != nil {
		return err
	}
	cfg, err := s.config(log)
	if err != nil {
		return err
	}
	reg, err := newRegistry()
	if err != nil {
		return err
	}
	cfg.Registry = reg
	if err := os.MkdirAll(cfg.Raft.DataDir, 0o750); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	entries, err := os.ReadDir(cfg.Raft.DataDir)
	if err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	fresh := len(entries) == 0
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	n, err := startNode(cfg)
	if err != nil {
		return err
	}
	log.Info("listening", "id", cfg.Raft.NodeID, "raft_addr", n.raft.RaftAddr(), "raft_bind", n.raft.RaftBindAddr(), "http_addr", n.httpAddr,
		"api_url", n.url, "data_dir", cfg.Raft.DataDir, "bootstrap", cfg.Raft.Bootstrap, "join", s.join.String())
	if len(cfg.API.Tokens) == 0 && cfg.API.WorkerTokenKey == nil {
		log.Warn("the HTTP API is unauthenticated: no --token, --token-file or --worker-token-key is set, so it listens on loopback only", "http_addr", n.httpAddr)
	}
	if cfg.Raft.InsecureRaft && cfg.Raft.TLS == nil {
		log.Warn("RAFT IS UNAUTHENTICATED (--raft-insecure): anyone who reaches the raft port can act as a cluster member "+
			"and rewrite the claim store; configure --raft-tls-cert, --raft-tls-key and --raft-tls-ca", "raft_addr", n.raft.RaftAddr())
	}
	if fresh && !cfg.Raft.Bootstrap && len(cfg.Join) == 0 {
		log.Info("neither --bootstrap nor --join: a fresh node waits to be added with 'baton cluster join'")
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", s.shutdownTimeout)
	case err := <-n.serveErr:
		runErr = fmt.Errorf("http server: %w", err)
		log.Error("http server failed; shutting down", "err", err)
	}
	stop() // a second signal kills the process at once
	sctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	if err := n.shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
		if runErr == nil {
			runErr = err
		}
	}
	log.Info("stopped")
	return runErr
}
