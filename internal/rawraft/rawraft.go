// Package rawraft starts a bare hashicorp/raft cluster for benchmarks: the same
// stores, transport and raft settings as a raftnode cluster started by
// internal/testcluster (bolt log and stable store behind a 512-entry log cache,
// file snapshots, TCP on loopback, batched applies, testcluster.Fast timeouts),
// but a trivial FSM and nothing above raft. Benchmarks compare Baton's write
// path against it in the same run, as a ratio.
package rawraft

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Options shape the cluster.
type Options struct {
	// Nodes is the cluster size. Default 3.
	Nodes int
	// NoSync skips fsync in the log store, as testcluster.Fast does.
	NoSync bool
	// NoPipeline refuses pipelined replication, as internal/faultnet's
	// transport wrapper (which every testcluster node runs behind) does.
	NoPipeline bool
}

// Cluster is a running bare raft cluster.
type Cluster struct {
	nodes []*node
}

type node struct {
	raft  *raft.Raft
	trans *raft.NetworkTransport
	store *raftboltdb.BoltStore
}

// New starts a cluster (every node bootstrapped with the full configuration)
// and waits for a leader. It stops at cleanup.
func New(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	c := &Cluster{}
	tb.Cleanup(c.stop)
	var servers []raft.Server
	var configs []*raft.Config
	var stores []*raftboltdb.BoltStore
	var logs []raft.LogStore
	var snaps []raft.SnapshotStore
	var transports []raft.Transport
	dir := tb.TempDir()
	for i := 0; i < opts.Nodes; i++ {
		id := fmt.Sprintf("r%d", i+1)
		store, err := raftboltdb.New(raftboltdb.Options{
			Path:        filepath.Join(dir, id+".db"),
			BoltOptions: &bbolt.Options{Timeout: time.Second, NoFreelistSync: true},
			NoSync:      opts.NoSync,
		})
		if err != nil {
			tb.Fatal(err)
		}
		cache, err := raft.NewLogCache(512, store)
		if err != nil {
			tb.Fatal(err)
		}
		snap, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dir, id), 2, hclog.NewNullLogger())
		if err != nil {
			tb.Fatal(err)
		}
		trans, err := raft.NewTCPTransportWithConfig("127.0.0.1:0", nil, &raft.NetworkTransportConfig{
			MaxPool: 3, Timeout: 10 * time.Second, Logger: hclog.NewNullLogger(),
		})
		if err != nil {
			tb.Fatal(err)
		}
		c.nodes = append(c.nodes, &node{trans: trans, store: store})
		var t raft.Transport = trans
		if opts.NoPipeline {
			t = noPipeline{trans}
		}
		rc := raft.DefaultConfig()
		rc.LocalID = raft.ServerID(id)
		rc.HeartbeatTimeout = 200 * time.Millisecond
		rc.ElectionTimeout = 200 * time.Millisecond
		rc.LeaderLeaseTimeout = 100 * time.Millisecond
		rc.CommitTimeout = 5 * time.Millisecond
		rc.SnapshotInterval = 120 * time.Second
		rc.SnapshotThreshold = 8192
		rc.TrailingLogs = 10240
		rc.BatchApplyCh = true
		rc.Logger = hclog.NewNullLogger()
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: rc.LocalID, Address: trans.LocalAddr()})
		configs, stores, logs, snaps, transports = append(configs, rc), append(stores, store), append(logs, cache), append(snaps, snap), append(transports, t)
	}
	for i, n := range c.nodes {
		if err := raft.BootstrapCluster(configs[i], logs[i], stores[i], snaps[i], transports[i], raft.Configuration{Servers: servers}); err != nil {
			tb.Fatal(err)
		}
		r, err := raft.NewRaft(configs[i], &counter{}, logs[i], stores[i], snaps[i], transports[i])
		if err != nil {
			tb.Fatal(err)
		}
		n.raft = r
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.Leader() == nil {
		if time.Now().After(deadline) {
			tb.Fatal("rawraft: no leader within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c
}

// Leader returns the leader, or nil if there is none now.
func (c *Cluster) Leader() *raft.Raft {
	for _, n := range c.nodes {
		if n.raft != nil && n.raft.State() == raft.Leader {
			return n.raft
		}
	}
	return nil
}

// Apply applies data on the leader and waits for the FSM, bounded by ctx.
func (c *Cluster) Apply(ctx context.Context, data []byte) error {
	r := c.Leader()
	if r == nil {
		return errors.New("rawraft: no leader")
	}
	f := r.Apply(data, 0)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Cluster) stop() {
	for _, n := range c.nodes {
		if n.raft != nil {
			_ = n.raft.Shutdown().Error()
		}
	}
	// Close outgoing pools everywhere first, so that every node's inbound
	// connection handlers see EOF and end.
	for _, n := range c.nodes {
		n.trans.CloseStreams()
	}
	for _, n := range c.nodes {
		_ = n.trans.Close()
		_ = n.store.Close()
	}
}

// noPipeline refuses pipelined replication; raft falls back to one
// AppendEntries at a time per follower.
type noPipeline struct{ *raft.NetworkTransport }

func (noPipeline) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

// counter is the trivial FSM: it counts applied entries.
type counter struct{ n atomic.Uint64 }

func (c *counter) Apply(*raft.Log) any { return c.n.Add(1) }

func (c *counter) Snapshot() (raft.FSMSnapshot, error) { return snapshot(c.n.Load()), nil }

func (c *counter) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var b [8]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return err
	}
	var n uint64
	for _, x := range b {
		n = n<<8 | uint64(x)
	}
	c.n.Store(n)
	return nil
}

type snapshot uint64

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	var b [8]byte
	for i := range b {
		b[i] = byte(uint64(s) >> (56 - 8*i))
	}
	if _, err := sink.Write(b[:]); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (snapshot) Release() {}
