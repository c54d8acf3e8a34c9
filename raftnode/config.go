package raftnode

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton/audit"
	"github.com/batonhq/baton/fsm"
)

// Config configures one claim-store node. Fields marked "required" have no
// default; everything else has one (see DefaultConfig). Nothing here changes at
// run time.
type Config struct {
	// NodeID is the node's stable raft server id. Required.
	NodeID string
	// DataDir holds the raft log, stable store, snapshots and the audit index.
	// Required.
	DataDir string
	// RaftAddr is the TCP address the raft transport listens on ("host:port";
	// port 0 picks a free one). Default "127.0.0.1:7000".
	RaftAddr string
	// AdvertiseAddr is the raft address other nodes dial. Default: the bound
	// listen address.
	AdvertiseAddr string
	// APIAddr is this node's HTTP API base URL ("http://host:port"), recorded in
	// the replicated state so that other nodes can forward writes here. Required.
	APIAddr string
	// Bootstrap makes this node a one-node cluster if it has no raft state yet.
	Bootstrap bool
	// TLS, if set, is used for raft traffic in both directions: servers require
	// and verify client certificates (mutual TLS). It must hold the node's
	// certificate, the cluster CA in both RootCAs and ClientCAs, and
	// ClientAuth = tls.RequireAndVerifyClientCert.
	TLS *tls.Config
	// InsecureRaft allows raft without TLS on an address other than loopback
	// (127.0.0.0/8, ::1, "localhost"; an unspecified address such as 0.0.0.0
	// is not loopback). Without TLS the raft port is unauthenticated: anyone
	// who reaches it can act as a cluster member (force an election, append
	// entries), so Validate refuses a non-loopback RaftAddr or AdvertiseAddr
	// without TLS unless this is set. Default false; ignored when TLS is set.
	InsecureRaft bool
	// MaxCommandBytes bounds one encoded command: Apply refuses a larger one
	// (fsm.ErrLimitExceeded) and the raft port refuses any request larger than
	// a full AppendEntries of such commands (64 entries; see DESIGN.md). Every
	// node must use the same value: a follower with a smaller one would refuse
	// the leader's entries. Default 8 MiB, twice the API's default body limit;
	// 64 KiB to 64 MiB.
	MaxCommandBytes int64

	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout are raft's;
	// defaults 1s, 1s and 500ms. CommitTimeout default 50ms.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotInterval and SnapshotThreshold decide when raft snapshots:
	// defaults 120s and 8192 entries. TrailingLogs (default 10240) entries are
	// kept after a snapshot so slow followers catch up without an install.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// SnapshotRetain is how many snapshots stay on disk. Default 2.
	SnapshotRetain int
	// ApplyTimeout bounds Apply and reads whose context has no deadline.
	// Default 10s.
	ApplyTimeout time.Duration
	// DigestInterval is how often the leader proposes a digest mark (an
	// fsm.MarkDigest), and only if the applied index moved since the last
	// one: every replica fingerprints its state and audit log at the mark's
	// index, and the nodes compare fingerprints (see DESIGN.md, "Corruption
	// check"). Default 1 min.
	DigestInterval time.Duration
	// NoSync skips fsync in the raft log store. Only for tests and benchmarks:
	// a crash may lose acknowledged writes.
	NoSync bool

	// FSM bounds the state machine; every node must use the same. Default
	// fsm.DefaultConfig().
	FSM fsm.Config
	// Audit configures the audit log's retention; every node must use the same.
	// Default audit.DefaultConfig().
	Audit audit.Config

	// Logger receives the node's logs and raft's. Default: discard.
	Logger *slog.Logger
	// Registerer receives the node's Prometheus metrics. Default: none.
	Registerer prometheus.Registerer
	// Now is the clock the leader stamps into commands. Default time.Now.
	Now func() time.Time
	// OnEvents, if set, receives the events of every applied batch, on raft's
	// FSM goroutine and on every node (leader or not). It must return quickly:
	// metrics, not I/O.
	OnEvents func([]fsm.Event)
	// WrapTransport, if set, wraps the raft transport (tests inject faults with
	// internal/faultnet).
	WrapTransport func(raft.Transport) raft.Transport
}

// DefaultConfig returns a Config with every default filled in; callers set
// NodeID, DataDir and APIAddr.
func DefaultConfig() Config {
	return Config{
		RaftAddr:           "127.0.0.1:7000",
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		SnapshotInterval:   120 * time.Second,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		SnapshotRetain:     2,
		ApplyTimeout:       10 * time.Second,
		DigestInterval:     time.Minute,
		MaxCommandBytes:    8 << 20,
		FSM:                fsm.DefaultConfig(),
		Audit:              audit.DefaultConfig(),
	}
}

// Validate reports every problem, joined.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("raftnode: config "+format, args...)) }
	if c.NodeID == "" {
		bad("NodeID is required")
	} else if err := fsm.CheckNodeID(c.NodeID); err != nil {
		// The state machine would refuse to record this node's API address,
		// and followers could never forward to it.
		bad("NodeID: %v", err)
	}
	if c.DataDir == "" {
		bad("DataDir is required")
	}
	if c.APIAddr == "" {
		bad("APIAddr is required")
	} else if len(c.APIAddr) > fsm.MaxAddrLen {
		bad("APIAddr longer than %d bytes", fsm.MaxAddrLen)
	}
	if _, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
		bad("RaftAddr %q: %v", c.RaftAddr, err)
	}
	if c.AdvertiseAddr != "" {
		host, port, err := net.SplitHostPort(c.AdvertiseAddr)
		if err != nil {
			bad("AdvertiseAddr %q: %v", c.AdvertiseAddr, err)
		} else if ip := net.ParseIP(host); (ip != nil && ip.IsUnspecified()) || port == "0" {
			bad("AdvertiseAddr %q must be dialable", c.AdvertiseAddr)
		}
	}
	for name, d := range map[string]time.Duration{
		"HeartbeatTimeout": c.HeartbeatTimeout, "ElectionTimeout": c.ElectionTimeout,
		"LeaderLeaseTimeout": c.LeaderLeaseTimeout, "CommitTimeout": c.CommitTimeout,
		"SnapshotInterval": c.SnapshotInterval, "ApplyTimeout": c.ApplyTimeout,
		"DigestInterval": c.DigestInterval,
	} {
		if d <= 0 {
			bad("%s must be > 0, got %s", name, d)
		}
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("LeaderLeaseTimeout (%s) must not exceed HeartbeatTimeout (%s)", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.SnapshotThreshold == 0 {
		bad("SnapshotThreshold must be > 0")
	}
	if c.SnapshotRetain < 1 {
		bad("SnapshotRetain must be >= 1, got %d", c.SnapshotRetain)
	}
	if c.TLS != nil && (len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil) {
		bad("TLS needs the node's certificate")
	}
	if c.TLS == nil && !c.InsecureRaft {
		for _, a := range []struct{ name, addr string }{{"RaftAddr", c.RaftAddr}, {"AdvertiseAddr", c.AdvertiseAddr}} {
			if a.addr != "" && !loopback(a.addr) {
				bad("%s %s is not a loopback address and raft TLS is off: anyone who reaches it could act as a cluster member; "+
					"set TLS (baton server: --raft-tls-cert, --raft-tls-key and --raft-tls-ca) or, on a network you trust, "+
					"InsecureRaft (--raft-insecure)", a.name, a.addr)
			}
		}
	}
	if c.MaxCommandBytes < minCommandBytes || c.MaxCommandBytes > maxCommandBytes {
		bad("MaxCommandBytes must be %d to %d, got %d", minCommandBytes, maxCommandBytes, c.MaxCommandBytes)
	}
	if err := c.FSM.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Audit.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// loopback reports whether a host:port names this machine only: "localhost"
// or a loopback IP. An empty or unspecified host listens on every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
