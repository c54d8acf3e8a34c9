package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/batonhq/baton/audit"
	"github.com/batonhq/baton/fsm"
)

// Node is one claim-store node: a hashicorp/raft server whose FSM is the Baton
// state machine, with its audit log. Its methods are safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	raft    *raft.Raft
	machine *machine
	audit   *audit.Log
	trans   *raft.NetworkTransport
	// bound is the address the raft listener is bound to (RaftAddr is the
	// advertised one).
	bound   net.Addr
	store   *raftboltdb.BoltStore
	metrics *metrics
	now     func() time.Time
	// lease dates the voters' acceptances of this node's AppendEntries
	// (lease.go); catch tracks catching up after a restart (catchup.go).
	lease *lease
	catch *catchUp

	// barrierTerm is the last term in which this node, as leader, saw its own
	// barrier applied: linearizable reads need a commit in the current term.
	barrierTerm atomic.Uint64

	// div is what the corruption check found (divergence.go).
	div divergence

	// leaderMu guards leaderCh, closed and replaced on every leadership change
	// seen by this node.
	leaderMu sync.Mutex
	leaderCh chan struct{}

	observer *raft.Observer
	obsCh    chan raft.Observation
	done     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

// New opens (or creates) the node's stores under cfg.DataDir, starts raft, and
// bootstraps a one-node cluster if cfg.Bootstrap is set and there is no raft
// state yet. It does not wait for a leader.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	logger = logger.With("node", cfg.NodeID)
	started := time.Now()
	n := &Node{cfg: cfg, log: logger, now: cfg.Now, leaderCh: make(chan struct{}), done: make(chan struct{}),
		lease: newLease(leaseDuration(cfg.HeartbeatTimeout)), catch: &catchUp{}}
	if n.now == nil {
		n.now = time.Now
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("raftnode: data dir: %w", err)
	}
	var closers []io.Closer
	fail := func(err error) (*Node, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i].Close()
		}
		return nil, err
	}

	// The audit index is rebuilt from the latest snapshot and the raft log at
	// every start (see DESIGN.md), so a file left by a crash is discarded.
	auditPath := filepath.Join(cfg.DataDir, "audit.db")
	if err := os.Remove(auditPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(fmt.Errorf("raftnode: reset audit index: %w", err))
	}
	al, err := audit.Open(auditPath, cfg.Audit)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, al)
	n.audit = al

	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(cfg.DataDir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: time.Second, NoFreelistSync: true},
		NoSync:      cfg.NoSync,
	})
	if err != nil {
		return fail(fmt.Errorf("raftnode: raft store: %w", err))
	}
	closers = append(closers, store)
	n.store = store
	logs, err := raft.NewLogCache(512, store)
	if err != nil {
		return fail(fmt.Errorf("raftnode: log cache: %w", err))
	}
	hlog := newHCLog(logger, "raft")
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, hlog)
	if err != nil {
		return fail(fmt.Errorf("raftnode: snapshot store: %w", err))
	}
	sl, err := listen(cfg.RaftAddr, cfg.AdvertiseAddr, cfg.TLS, limitsFor(cfg.MaxCommandBytes), logger)
	if err != nil {
		return fail(err)
	}
	n.bound = sl.Listener.Addr()
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: sl, MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog,
	})
	closers = append(closers, n.trans)
	// Innermost, so that cfg.WrapTransport's wrappers go around it: raft must
	// never reach the network transport's heartbeat fast path or pipelining (serial.go).
	var trans raft.Transport = newSerialTransport(n.trans)
	if cfg.WrapTransport != nil {
		trans = cfg.WrapTransport(trans)
	}
	trans, tp := newTap(trans, n.lease, n.catch, n.done)
	closers = append(closers, tp)

	n.metrics = newMetrics(cfg.Registerer, cfg.NodeID)
	n.machine, err = newMachine(cfg.FSM, al, logger)
	if err != nil {
		return fail(err)
	}
	n.machine.onApply = n.metrics.applied
	n.machine.onEvents = cfg.OnEvents
	n.wireDigests()

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.MaxAppendEntries = maxAppendEntries // the transport's message bound depends on it
	rc.BatchApplyCh = true
	rc.NoLegacyTelemetry = true // per-peer metrics with the peer id in the name; the labelled ones stay
	rc.Logger = hlog
	if err := raft.ValidateConfig(rc); err != nil {
		return fail(fmt.Errorf("raftnode: raft config: %w", err))
	}

	has, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		return fail(fmt.Errorf("raftnode: inspect state: %w", err))
	}
	if cfg.Bootstrap {
		if !has {
			boot := raft.Configuration{Servers: []raft.Server{{
				Suffrage: raft.Voter, ID: rc.LocalID, Address: trans.LocalAddr(),
			}}}
			if err := raft.BootstrapCluster(rc, logs, store, snaps, trans, boot); err != nil {
				return fail(fmt.Errorf("raftnode: bootstrap: %w", err))
			}
		}
	}

	if n.catch.start, err = lastIndex(logs, snaps); err != nil {
		return fail(err)
	}
	if has {
		sitOutLease(started, cfg.HeartbeatTimeout)
	}
	r, err := raft.NewRaft(rc, n.machine, logs, store, snaps, trans)
	if err != nil {
		return fail(fmt.Errorf("raftnode: start raft: %w", err))
	}
	n.raft = r
	// Observations: a buffered channel with non-blocking delivery, so a slow
	// consumer loses observations rather than stalling raft; leadership state is
	// always re-read from raft, the observation only wakes us.
	n.obsCh = make(chan raft.Observation, 16)
	n.observer = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	r.RegisterObserver(n.observer)
	n.wg.Add(2)
	go n.run()
	go n.markLoop()
	logger.Info("node started", "raft_addr", trans.LocalAddr(), "api_addr", cfg.APIAddr, "bootstrap", cfg.Bootstrap)
	return n, nil
}

// run owns the node's background duties: it follows leadership changes, wakes
// waiters, and, while leader, keeps this node's API address registered.
func (n *Node) run() {
	defer n.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	wasLeader := false
	var seen leaderSeen
	for {
		select {
		case <-n.done:
			return
		case <-n.obsCh:
		case <-tick.C:
		}
		leader := n.raft.State() == raft.Leader
		n.metrics.setLeader(leader)
		if _, id := n.raft.LeaderWithID(); seen.changed(string(id), n.raft.CurrentTerm()) {
			n.metrics.leaderChange.Inc()
		}
		if leader != wasLeader {
			n.leaderMu.Lock()
			close(n.leaderCh)
			n.leaderCh = make(chan struct{})
			n.leaderMu.Unlock()
			wasLeader = leader
			n.log.Info("leadership changed", "leader", leader, "term", n.raft.CurrentTerm())
		}
		if leader {
			n.registerSelf()
		}
	}
}

// leaderSeen is the last leader (and its term) a node learned of, to count
// leader changes.
type leaderSeen struct {
	id   string
	term uint64
}

// changed records that the leader is id in term ("" while there is none) and
// reports whether that is a change from the last leader seen; the first
// leader seen is not.
func (s *leaderSeen) changed(id string, term uint64) bool {
	if id == "" || (id == s.id && term == s.term) {
		return false
	}
	first := s.id == ""
	s.id, s.term = id, term
	return !first
}

// registerSelf records this node's API address in the state if it is missing
// or stale, so that followers can forward writes to it.
func (n *Node) registerSelf() {
	var addr string
	n.machine.read(func(s *fsm.State) { addr = s.NodeAPIAddr(n.cfg.NodeID) })
	if addr == n.cfg.APIAddr {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	go func() {
		select {
		case <-n.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	res, err := n.Propose(ctx, fsm.Command{
		Header: fsm.Header{Actor: "node:" + n.cfg.NodeID, Cause: "leader registers its API address"},
		Body:   fsm.RegisterNode{Node: n.cfg.NodeID, APIAddr: n.cfg.APIAddr},
	})
	if err == nil {
		err = res.Err
	}
	var re *fsm.RejectError
	switch {
	case err == nil, errors.Is(err, ErrShutdown):
	case errors.As(err, &re):
		// Config.Validate keeps this from happening; if it does anyway,
		// followers cannot forward to this leader: say so loudly.
		n.log.Error("the state machine refuses this node's API address; followers cannot forward writes to it",
			"node", n.cfg.NodeID, "api_addr", n.cfg.APIAddr, "err", err)
	default:
		n.log.Warn("register API address", "err", err)
	}
}

// ID returns the node id.
func (n *Node) ID() string { return n.cfg.NodeID }

// RaftAddr returns the address peers dial.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }

// RaftBindAddr returns the address the raft listener is bound to: RaftAddr
// unless an advertise address differs (a NAT, a proxy).
func (n *Node) RaftBindAddr() string { return n.bound.String() }

// APIAddr returns this node's API address.
func (n *Node) APIAddr() string { return n.cfg.APIAddr }

// Audit returns the node's audit log, for queries.
func (n *Node) Audit() *audit.Log { return n.audit }

// IsLeader reports whether this node is the raft leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LeadershipChanged returns a channel closed at the next leadership change of
// this node (becoming or ceasing to be leader).
func (n *Node) LeadershipChanged() <-chan struct{} {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	return n.leaderCh
}

// Leader returns the current leader's id, raft address and API address (empty
// when unknown).
func (n *Node) Leader() (id, raftAddr, apiAddr string) {
	addr, sid := n.raft.LeaderWithID()
	id, raftAddr = string(sid), string(addr)
	if id != "" {
		n.machine.read(func(s *fsm.State) { apiAddr = s.NodeAPIAddr(id) })
	}
	return id, raftAddr, apiAddr
}

func (n *Node) notLeader() error {
	id, addr, api := n.Leader()
	return &NotLeaderError{LeaderID: id, LeaderAddr: addr, LeaderAPI: api}
}

// Shutdown stops the node. A leader first hands leadership to another voter
// (bounded by ctx), so the cluster does not wait for an election timeout. It is
// idempotent.
func (n *Node) Shutdown(ctx context.Context) error {
	n.stopOnce.Do(func() {
		if n.IsLeader() && n.voters() > 1 {
			// The target of a transfer may win at once, whatever the voters
			// heard from this node: the lease ends here.
			n.lease.revoke(n.raft.CurrentTerm())
			if err := waitFuture(ctx, n.raft.LeadershipTransfer()); err != nil {
				n.log.Warn("leadership transfer before shutdown", "err", err)
			}
		}
		close(n.done)
		n.wg.Wait()
		n.raft.DeregisterObserver(n.observer)
		errs := []error{n.raft.Shutdown().Error()}
		n.trans.CloseStreams()
		errs = append(errs, n.trans.Close(), n.store.Close(), n.audit.Close())
		n.metrics.unregister()
		n.stopErr = errors.Join(errs...)
		n.log.Info("node stopped")
	})
	return n.stopErr
}

// Kill stops the node abruptly: no leadership transfer, as close to a crash as an
// in-process test can get. Tests use it to kill a leader.
func (n *Node) Kill() error {
	n.stopOnce.Do(func() {
		close(n.done)
		n.wg.Wait()
		n.raft.DeregisterObserver(n.observer)
		n.trans.CloseStreams()
		n.stopErr = errors.Join(n.trans.Close(), n.raft.Shutdown().Error(), n.store.Close(), n.audit.Close())
		n.metrics.unregister()
	})
	return n.stopErr
}

func (n *Node) voters() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	v := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			v++
		}
	}
	return v
}

func (n *Node) stopped() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// waitFuture waits for a raft future, or for ctx. hashicorp futures block
// without a deadline while there is no quorum; the goroutine left behind ends
// when raft resolves the future (at the latest at shutdown).
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// withTimeout applies the node's default timeout to a context without a deadline.
func (n *Node) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, n.cfg.ApplyTimeout)
}
