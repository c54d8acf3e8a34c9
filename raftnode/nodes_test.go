package raftnode_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

// startNodes starts a cluster of count raftnode nodes over loopback with bolt
// stores in tb.TempDir(): the first bootstraps, the others join through it.
// Unlike internal/testcluster, which always puts the fault transport (and so
// no pipelining) around every node, each node's transport is exactly what
// wrap makes of the one New builds (nil: production's). tune adjusts each
// node's config, which starts as raftnode.DefaultConfig(). Every node stops at
// cleanup.
func startNodes(tb testing.TB, count int, tune func(*raftnode.Config), wrap func(id string, t raft.Transport) raft.Transport) []*raftnode.Node {
	tb.Helper()
	dir := tb.TempDir()
	var nodes []*raftnode.Node
	tb.Cleanup(func() { stopNodes(nodes) })
	for i := range count {
		id := fmt.Sprintf("n%d", i+1)
		cfg := raftnode.DefaultConfig()
		cfg.NodeID = id
		cfg.DataDir = filepath.Join(dir, id)
		cfg.RaftAddr = "127.0.0.1:0"
		cfg.APIAddr = "http://" + id + ".api.invalid"
		cfg.Bootstrap = i == 0
		cfg.Logger = slog.New(slog.NewTextHandler(logWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if tune != nil {
			tune(&cfg)
		}
		if wrap != nil {
			cfg.WrapTransport = func(t raft.Transport) raft.Transport { return wrap(id, t) }
		}
		n, err := raftnode.New(cfg)
		if err != nil {
			tb.Fatalf("start %s: %v", id, err)
		}
		nodes = append(nodes, n)
		if i == 0 {
			testcluster.Eventually(tb, id+" leads", func() error {
				if !n.IsLeader() {
					return errors.New("not leader yet")
				}
				return nil
			})
			continue
		}
		testcluster.Eventually(tb, "join "+id, func() error {
			l, err := leaderOf(nodes)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return l.Join(ctx, id, n.RaftAddr(), cfg.APIAddr)
		})
	}
	testcluster.Eventually(tb, "every node ready", func() error {
		for _, n := range nodes {
			if err := n.Ready(); err != nil {
				return fmt.Errorf("%s: %w", n.ID(), err)
			}
		}
		return nil
	})
	return nodes
}

// stopNodes shuts every node down, all at once.
func stopNodes(nodes []*raftnode.Node) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = n.Shutdown(ctx)
		})
	}
	wg.Wait()
}

// leaderOf returns the one node that is leader now.
func leaderOf(nodes []*raftnode.Node) (*raftnode.Node, error) {
	var leader *raftnode.Node
	for _, n := range nodes {
		if n.IsLeader() {
			if leader != nil {
				return nil, fmt.Errorf("two leaders: %s and %s", leader.ID(), n.ID())
			}
			leader = n
		}
	}
	if leader == nil {
		return nil, errors.New("no leader")
	}
	return leader, nil
}

// waitConverged waits until there is a leader whose last entry is of its own
// term (its no-op at least), and every node holds that entry as its last and
// has applied it; it returns that index.
func waitConverged(tb testing.TB, nodes []*raftnode.Node) uint64 {
	tb.Helper()
	var last uint64
	testcluster.Eventually(tb, "every log equally long and applied", func() error {
		l, err := leaderOf(nodes)
		if err != nil {
			return err
		}
		idx, term := raftnode.LastLog(l)
		if lt := raftnode.CurrentTerm(l); term != lt {
			return fmt.Errorf("leader %s has no entry of its term %d yet", l.ID(), lt)
		}
		for _, n := range nodes {
			st, err := n.Status(context.Background())
			if err != nil {
				return err
			}
			if st.LastIndex != idx || st.AppliedIndex != idx {
				return fmt.Errorf("%s: last index %d, applied %d; leader %s's last %d", n.ID(), st.LastIndex, st.AppliedIndex, l.ID(), idx)
			}
		}
		last = idx
		return nil
	})
	return last
}

// firstLogDifference compares every node's raft log entry by entry (index,
// term, type, data, extensions) from index from to index to (a range every
// node holds, see waitConverged), and describes the first difference; ""
// means none. Entries below a node's first index (compacted into a
// snapshot) are skipped; a node missing an entry another holds is a
// difference.
func firstLogDifference(tb testing.TB, nodes []*raftnode.Node, from, to uint64) string {
	tb.Helper()
	logs := make([]map[uint64]raft.Log, len(nodes))
	lo := from
	for i, n := range nodes {
		entries, err := raftnode.LogEntries(n)
		if err != nil {
			tb.Fatal(err)
		}
		logs[i] = make(map[uint64]raft.Log, len(entries))
		for _, e := range entries {
			logs[i][e.Index] = e
		}
		if len(entries) > 0 {
			lo = max(lo, entries[0].Index)
		}
	}
	for idx := lo; idx <= to; idx++ {
		ref, refOK := logs[0][idx]
		for i := 1; i < len(nodes); i++ {
			e, ok := logs[i][idx]
			if ok != refOK || (ok && !sameEntry(ref, e)) {
				return fmt.Sprintf("index %d: %s holds %s, %s holds %s", idx,
					nodes[0].ID(), describeEntry(ref, refOK), nodes[i].ID(), describeEntry(e, ok))
			}
		}
	}
	return ""
}

func sameEntry(a, b raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Extensions, b.Extensions)
}

func describeEntry(e raft.Log, ok bool) string {
	if !ok {
		return "nothing"
	}
	s := fmt.Sprintf("term %d %s, %d bytes", e.Term, e.Type, len(e.Data))
	if e.Type == raft.LogCommand {
		if cmd, err := fsm.DecodeCommand(e.Data); err == nil {
			s += fmt.Sprintf(" (%T)", cmd.Body)
		}
	}
	return s
}

// sameState fails unless every node holds a byte-identical state encoding and
// the same audit log.
func sameState(tb testing.TB, nodes []*raftnode.Node) {
	tb.Helper()
	var ref []byte
	var refAudit []fsm.Event
	for i, n := range nodes {
		var buf bytes.Buffer
		var werr error
		if err := n.Read(context.Background(), raftnode.Stale, func(s *fsm.State) { werr = s.WriteSnapshot(&buf) }); err != nil {
			tb.Fatal(err)
		}
		if werr != nil {
			tb.Fatal(werr)
		}
		evs, err := testcluster.AllEvents(n.Audit())
		if err != nil {
			tb.Fatal(err)
		}
		if i == 0 {
			ref, refAudit = buf.Bytes(), evs
			continue
		}
		if !bytes.Equal(ref, buf.Bytes()) {
			tb.Fatalf("state of %s differs from %s's", n.ID(), nodes[0].ID())
		}
		if len(evs) != len(refAudit) {
			tb.Fatalf("audit of %s has %d events, %s's %d", n.ID(), len(evs), nodes[0].ID(), len(refAudit))
		}
		for j := range evs {
			if evs[j].Index != refAudit[j].Index || evs[j].String() != refAudit[j].String() {
				tb.Fatalf("audit event %d: %s has %v, %s has %v", j, n.ID(), evs[j], nodes[0].ID(), refAudit[j])
			}
		}
	}
}

// logWriter sends log lines to tb.Log, so they show only for failing tests.
type logWriter struct{ tb testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
