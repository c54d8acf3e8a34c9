package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/audit"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/raftnode"
)

// Writer proposes commands (raftnode.Node).
type Writer interface {
	Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error)
}

// Reader reads the state and waits for it to change (raftnode.Node).
type Reader interface {
	Read(ctx context.Context, c raftnode.Consistency, fn func(*fsm.State)) error
	WaitWorker(ctx context.Context, w fsm.WorkerID, after fsm.RaftIndex) (fsm.RaftIndex, error)
	WorkerIndex(w fsm.WorkerID) fsm.RaftIndex
	WaitAudit(ctx context.Context, after fsm.RaftIndex) (fsm.RaftIndex, error)
}

// Cluster is membership and leadership (raftnode.Node).
type Cluster interface {
	Leader() (id, raftAddr, apiAddr string)
	IsLeader() bool
	Join(ctx context.Context, id, raftAddr, apiAddr string) error
	Remove(ctx context.Context, id string) error
	Status(ctx context.Context) (raftnode.Status, error)
	Ready() error
}

// Node is everything the server needs from its claim-store node.
type Node interface {
	Writer
	Reader
	Cluster
	ID() string
	Audit() *audit.Log
}

var _ Node = (*raftnode.Node)(nil)

// Sessions is the leader's worker session table (the controller implements it).
// Heartbeats are not raft writes: they renew a lease held in the leader's memory.
type Sessions interface {
	// Registered grants a freshly registered incarnation a full TTL.
	Registered(w fsm.WorkerID, inc fsm.Incarnation)
	// Heartbeat renews w's session. If the leader holds none for this
	// incarnation it returns an error that wraps api.ErrUnknownSession, and
	// the worker is told to register again.
	Heartbeat(w fsm.WorkerID, inc fsm.Incarnation) (ttl time.Duration, err error)
}

// Planner answers dry-run placement queries (the controller implements it).
type Planner interface {
	// Plan returns the moves the controller would make now and why.
	Plan(ctx context.Context) (api.Plan, error)
}

// Config configures the server. Zero fields take the defaults shown.
type Config struct {
	// Tokens are the accepted static bearer tokens. With neither Tokens nor
	// WorkerTokenKey there is no authentication (the binary then binds
	// loopback only).
	Tokens []Token
	// WorkerTokenKey, if set, also accepts derived worker tokens
	// (WorkerToken): a worker is admitted by issuing its token, without a
	// restart. At least MinWorkerTokenKeyLen bytes.
	WorkerTokenKey []byte
	// Sessions renews worker sessions on the leader. Nil: heartbeats only check
	// that the worker exists with that incarnation.
	Sessions Sessions
	// Planner serves GET /v1/plan. Nil: 404.
	Planner Planner
	// SessionTTL and HeartbeatInterval are what registrations are told.
	// Defaults 10s and 2s; they must match the controller's.
	SessionTTL        time.Duration
	HeartbeatInterval time.Duration
	// MaxBodyBytes bounds request bodies. Default 4 MiB; at least 1 KiB.
	MaxBodyBytes int64
	// BodyTimeout bounds reading a request body, from the end of its
	// headers (408 request_timeout after it). Requests without a body, such
	// as blocking queries and audit follows, have no such bound. Default
	// 30s.
	BodyTimeout time.Duration
	// MaxWait bounds a blocking query's wait. Default 5m; the default wait is 30s.
	MaxWait time.Duration
	// DrainTimeout is the default drain deadline of an operator move.
	// Default 30s; at most fsm.MaxDrainTimeout.
	DrainTimeout time.Duration
	// Forward is the client used to forward requests to the leader (set its
	// TLS config when the API uses TLS). Default: a client with a 10 s dial
	// timeout and no overall timeout (blocking queries are long).
	Forward *http.Client
	// DigestCheckInterval is how often the corruption check runs: it reads
	// every member's GET /v1/cluster/status through its API address (with
	// the Forward client and PeerToken) and compares their state digests
	// with this node's (raftnode.Node.CheckDigests). Default 1 min, the
	// leader's default DigestInterval; negative turns the check off.
	DigestCheckInterval time.Duration
	// PeerToken is the bearer token the corruption check presents to other
	// nodes. Default: every node accepts the same tokens, so the least
	// privileged of Tokens (read, then worker, then operator), else a worker
	// token derived from WorkerTokenKey for the worker id PeerWorkerID;
	// without either the API has no authentication and none is sent.
	PeerToken string
	// Gatherer serves /metrics. Default: prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Logger. Default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.SessionTTL == 0 {
		c.SessionTTL = 10 * time.Second
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 2 * time.Second
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 4 << 20
	}
	if c.BodyTimeout == 0 {
		c.BodyTimeout = 30 * time.Second
	}
	if c.MaxWait == 0 {
		c.MaxWait = 5 * time.Minute
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.Gatherer == nil {
		c.Gatherer = prometheus.DefaultGatherer
	}
	if c.DigestCheckInterval == 0 {
		c.DigestCheckInterval = time.Minute
	}
	return c
}

// Validate reports every problem, joined.
func (c Config) Validate() error {
	var errs []error
	c = c.withDefaults()
	if c.SessionTTL < 3*c.HeartbeatInterval {
		errs = append(errs, fmt.Errorf("server: config SessionTTL (%s) must be at least 3 heartbeats (%s)", c.SessionTTL, c.HeartbeatInterval))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("server: config MaxBodyBytes %d below 1 KiB", c.MaxBodyBytes))
	}
	if c.MaxWait < time.Second {
		errs = append(errs, fmt.Errorf("server: config MaxWait %s below 1s", c.MaxWait))
	}
	if c.BodyTimeout < 0 {
		errs = append(errs, fmt.Errorf("server: config BodyTimeout %s is negative", c.BodyTimeout))
	}
	if c.DrainTimeout <= 0 || fsm.CheckDrainTimeout(c.DrainTimeout) != nil {
		errs = append(errs, fmt.Errorf("server: config DrainTimeout %s out of range (0, %s]", c.DrainTimeout, fsm.MaxDrainTimeout))
	}
	if c.WorkerTokenKey != nil && len(c.WorkerTokenKey) < MinWorkerTokenKeyLen {
		errs = append(errs, fmt.Errorf("server: config WorkerTokenKey: %w: %d bytes, want at least %d",
			ErrWorkerTokenKey, len(c.WorkerTokenKey), MinWorkerTokenKeyLen))
	}
	seen := map[string]bool{}
	for i, t := range c.Tokens {
		if err := t.validate(); err != nil {
			errs = append(errs, fmt.Errorf("server: config Tokens[%d] (%s): %w", i, clip(t.Name), err))
		}
		if seen[t.Secret] {
			errs = append(errs, fmt.Errorf("server: config Tokens[%d] (%s): duplicate secret", i, t.Name))
		}
		seen[t.Secret] = true
	}
	return errors.Join(errs...)
}
