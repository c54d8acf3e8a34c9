package raftnode_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

// smallCommands sets the smallest MaxCommandBytes (64 KiB), so that a full
// AppendEntries of the largest commands (about 4 MiB) is cheap to send.
func smallCommands(cfg *raftnode.Config) { cfg.MaxCommandBytes = 64 << 10 }

// steadyTimeouts restores raft's default timeouts over testcluster.Fast's:
// under -race on a busy machine, applying 4 MiB batches can outlast Fast's
// 100 ms leader lease, and the elections that follow only slow the test.
func steadyTimeouts(cfg *raftnode.Config) {
	d := raftnode.DefaultConfig()
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout
}

// messageBound is the raft port's bound on one request for smallCommands, as
// DESIGN.md derives it: 64 entries of (64 KiB + 1 KiB), plus 64 KiB.
const messageBound = 64*(64<<10+1<<10) + 64<<10

// bigDeclare is a Declare whose encoding is just under size bytes: partitions
// of 16 long subjects each, all distinct (prefix names the command).
func bigDeclare(t testing.TB, prefix string, size int) fsm.Command {
	t.Helper()
	pad := strings.Repeat("a", 200)
	var cmd fsm.Command
	for p := 0; ; p++ {
		spec := fsm.PartitionSpec{ID: fsm.PartitionID(fmt.Sprintf("%s-%d", prefix, p))}
		for s := range 16 {
			spec.Subjects = append(spec.Subjects, fmt.Sprintf("%s.%d.%d.%s", prefix, p, s, pad))
		}
		next := fsm.Command{Header: fsm.Header{Actor: "test", RequestID: raftnode.NewRequestID()},
			Body: fsm.Declare{Partitions: append(cmdSpecs(cmd), spec)}}
		b, err := fsm.EncodeCommand(next)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > size-256 { // Apply adds the leader's timestamp
			if cmd.Body == nil {
				t.Fatalf("one partition encodes to %d bytes, over %d", len(b), size)
			}
			return cmd
		}
		cmd = next
	}
}

func cmdSpecs(cmd fsm.Command) []fsm.PartitionSpec {
	if d, ok := cmd.Body.(fsm.Declare); ok {
		return d.Partitions
	}
	return nil
}

// records is a slog.Handler that keeps every record (with the logger's
// attributes) for the test to inspect.
type records struct {
	mu    *sync.Mutex
	recs  *[]map[string]string
	attrs []slog.Attr
}

func newRecords() records { return records{mu: new(sync.Mutex), recs: new([]map[string]string)} }

func (records) Enabled(context.Context, slog.Level) bool { return true }

func (h records) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"level": r.Level.String(), "msg": r.Message}
	for _, a := range h.attrs {
		m[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.recs = append(*h.recs, m)
	return nil
}

func (h records) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return h
}

func (h records) WithGroup(string) slog.Handler { return h }

// find returns the first record with every given key and value.
func (h records) find(kv map[string]string) map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
next:
	for _, r := range *h.recs {
		for k, v := range kv {
			if r[k] != v {
				continue next
			}
		}
		return r
	}
	return nil
}

// clientHandle is the msgpack handle hashicorp/raft's client encodes
// requests with (getConn: TimeNotBuiltin unless the new time format is on).
func clientHandle() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.TimeNotBuiltin = true
	return h
}

// forgedAppendEntries is an AppendEntries as a leader encodes it (rpc type
// byte, then msgpack) whose one entry's data header is replaced by forged:
// the attack from issue 8, a length the sender never means to send.
func forgedAppendEntries(t *testing.T, forged []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteByte(0) // rpcAppendEntries
	req := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n9"), Addr: []byte("127.0.0.1:1")},
		Term:      1 << 40, PrevLogEntry: 1, PrevLogTerm: 1,
		Entries: []*raft.Log{{Index: 2, Term: 1 << 40, Type: raft.LogCommand, Data: []byte("MARKER")}},
	}
	if err := codec.NewEncoder(&buf, clientHandle()).Encode(req); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	i := bytes.Index(b, []byte("\xa6MARKER")) // fixstr of 6 bytes
	if i < 0 {
		t.Fatal("entry data not found in the encoding")
	}
	return append(b[:i:i], forged...)
}

// attack dials addr, sends head and then filler bytes (up to limit) for as
// long as the node reads them, and returns once the node closes the
// connection: the peer address the node saw, and what the node allocated
// meanwhile (every allocation of the process, garbage included).
func attack(t *testing.T, addr string, head []byte, filler byte, limit int) (peer string, allocated uint64) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if _, err := conn.Write(head); err != nil {
			return
		}
		buf := bytes.Repeat([]byte{filler}, 64<<10)
		for sent := 0; sent < limit; sent += len(buf) {
			if _, err := conn.Write(buf); err != nil {
				return
			}
		}
	}()
	if err := conn.SetReadDeadline(time.Now().Add(testcluster.Timeout)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(make([]byte, 1))
	runtime.ReadMemStats(&after)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("the node kept the connection open for %s (and allocated %d MiB)", testcluster.Timeout, (after.TotalAlloc-before.TotalAlloc)>>20)
	case err == nil || n > 0:
		t.Fatal("the node answered the forged request")
	case !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err):
		t.Fatalf("read: %v", err)
	}
	conn.Close()
	<-wrote
	return conn.LocalAddr().String(), after.TotalAlloc - before.TotalAlloc
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && strings.Contains(oe.Err.Error(), "reset")
}

// TestRaftPort_ForgedLengthsAllocateNothing: issue 8's attack. An
// unauthenticated peer sends a follower an AppendEntries whose entry claims
// 4 GiB (then streams data after it), or whose entries array claims four
// billion entries (each a 1-byte empty map the decoder would turn into a
// ~100-byte log entry). The follower closes the connection at the forged
// header, allocates next to nothing, logs a warning naming the peer, and the
// cluster goes on committing.
func TestRaftPort_ForgedLengthsAllocateNothing(t *testing.T) {
	logs := newRecords()
	c := testcluster.New(t, 3, func(cfg *raftnode.Config) { cfg.Logger = slog.New(logs) })
	c.MustApply(t, join("w0"))
	target := c.Followers(t)[0]
	u32 := func(b byte, n uint32) []byte { return binary.BigEndian.AppendUint32([]byte{b}, n) }
	// Without the bound, 32 MiB of string data cost a follower gigabytes of
	// allocations (the string grows 256 KiB at a time, copied each time), and
	// 4 MiB of empty entries about 450 MiB of live log entries.
	tests := []struct {
		name   string
		head   []byte
		filler byte
		limit  int
	}{
		{"entry data as a 4 GiB string", forgedAppendEntries(t, u32(0xdb, 0xfffffff0)), 'x', 32 << 20},
		{"entry data as 4 GiB of binary", forgedAppendEntries(t, u32(0xc6, 0xfffffff0)), 'x', 32 << 20},
		{"four billion entries", append([]byte{0, 0x81, 0xa7, 'E', 'n', 't', 'r', 'i', 'e', 's'}, u32(0xdd, 0xffffffff)...), 0x80, 4 << 20},
	}
	const bound = 64 << 20
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer, allocated := attack(t, target.Raft().RaftAddr(), tt.head, tt.filler, tt.limit)
			if allocated > bound {
				t.Errorf("the process allocated %d MiB while the node read the forged request, want at most %d MiB", allocated>>20, bound>>20)
			}
			testcluster.Eventually(t, "a warning naming the peer", func() error {
				if logs.find(map[string]string{"level": "WARN", "node": target.ID, "peer": peer}) == nil {
					return fmt.Errorf("no warning from %s naming %s", target.ID, peer)
				}
				return nil
			})
			res := c.MustApply(t, join(fmt.Sprintf("w%d", i+1)))
			c.WaitApplied(t, res.Index)
		})
	}
	c.EnsureSame(t)
}

// TestRaftPort_FullAppendEntriesOfLargestCommands: a follower cut off while
// the leader commits more than 64 commands of nearly MaxCommandBytes catches
// up through AppendEntries of 64 such entries, the largest request a leader
// sends; a command over MaxCommandBytes is refused before it is proposed.
func TestRaftPort_FullAppendEntriesOfLargestCommands(t *testing.T) {
	c := testcluster.New(t, 3, smallCommands, steadyTimeouts)
	c.MustApply(t, join("w1"))
	lag := c.Followers(t)[0]
	var ids []string
	for _, n := range c.Nodes {
		ids = append(ids, n.ID)
	}
	c.Net.Isolate(lag.ID, ids...)
	var last fsm.Result
	for i := range 70 {
		last = c.MustApply(t, bigDeclare(t, fmt.Sprintf("p%d", i), 64<<10))
	}
	c.Net.Heal()
	c.WaitApplied(t, last.Index)
	c.EnsureSame(t)

	tooBig := bigDeclare(t, "big", 80<<10)
	ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
	defer cancel()
	_, err := c.Leader(t).Raft().Apply(ctx, tooBig)
	if !errors.Is(err, fsm.ErrLimitExceeded) || !strings.Contains(err.Error(), "MaxCommandBytes") {
		t.Fatalf("apply of a command over MaxCommandBytes: %v, want limit_exceeded", err)
	}
}

// TestRaftPort_SnapshotLargerThanTheMessageBound: a lagging follower catches up
// by installing a snapshot several times the message bound: snapshot data
// streams after the InstallSnapshot request and is not bounded.
func TestRaftPort_SnapshotLargerThanTheMessageBound(t *testing.T) {
	c := testcluster.New(t, 3, smallCommands, steadyTimeouts, func(cfg *raftnode.Config) {
		cfg.SnapshotThreshold = 20
		cfg.TrailingLogs = 5
		cfg.SnapshotInterval = 50 * time.Millisecond
	})
	c.MustApply(t, join("w1"))
	lag := c.Followers(t)[0]
	var ids []string
	for _, n := range c.Nodes {
		ids = append(ids, n.ID)
	}
	c.Net.Isolate(lag.ID, ids...)
	lagStatus, err := lag.Raft().Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var last fsm.Result
	for i := range 80 {
		last = c.MustApply(t, bigDeclare(t, fmt.Sprintf("s%d", i), 64<<10))
	}
	// Wait for a snapshot that holds most of the commands, so that the one
	// the lagging node installs is several MiB.
	mid := uint64(last.Index) - 15
	testcluster.Eventually(t, "leader snapshot of most commands", func() error {
		st, err := c.Leader(t).Raft().Status(context.Background())
		if err != nil {
			return err
		}
		if st.SnapshotIndex < mid || st.SnapshotIndex < lagStatus.LastIndex+20 {
			return fmt.Errorf("leader snapshot at %d, want %d", st.SnapshotIndex, mid)
		}
		return nil
	})
	c.Net.Heal()
	c.WaitApplied(t, last.Index)
	c.EnsureSame(t)
	// The lagging node's snapshot store holds what it installed; it took
	// none of its own (it applied fewer than SnapshotThreshold entries since).
	if got := largestSnapshot(t, lag.Cfg.DataDir); got <= messageBound {
		t.Fatalf("the lagging node's snapshot is %d bytes, not over the message bound %d", got, messageBound)
	}
}

func largestSnapshot(t *testing.T, dataDir string) int64 {
	t.Helper()
	states, err := filepath.Glob(filepath.Join(dataDir, "snapshots", "*", "state.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var largest int64
	for _, s := range states {
		if fi, err := os.Stat(s); err == nil {
			largest = max(largest, fi.Size())
		}
	}
	return largest
}

// pipelines counts the append pipelines raft opens through a transport.
type pipelines struct {
	*raft.NetworkTransport
	n *atomic.Int64
}

func (p pipelines) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p.n.Add(1)
	return p.NetworkTransport.AppendEntriesPipeline(id, target)
}

// TestRaftPort_PipelinedReplicationOfLargestCommands: pipelined replication,
// which Baton's nodes no longer send (serial.go) but a node of an earlier
// build still does during a rolling upgrade: with pipelined AppendEntries
// sent back to back, many of them full of the largest commands, the raft
// port's guard frames them all and every node applies everything.
func TestRaftPort_PipelinedReplicationOfLargestCommands(t *testing.T) {
	var opened atomic.Int64
	var nodes []*raftnode.Node
	t.Cleanup(func() {
		for _, n := range nodes {
			ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
			_ = n.Shutdown(ctx)
			cancel()
		}
	})
	for i := range 3 {
		cfg := raftnode.DefaultConfig()
		cfg.NodeID = fmt.Sprintf("n%d", i+1)
		cfg.DataDir = filepath.Join(t.TempDir(), cfg.NodeID)
		cfg.RaftAddr = "127.0.0.1:0"
		cfg.APIAddr = "http://" + cfg.NodeID + ".api.invalid"
		cfg.Bootstrap = i == 0
		cfg.NoSync = true // raft's default timeouts: elections stay rare under the write burst
		smallCommands(&cfg)
		cfg.WrapTransport = func(tr raft.Transport) raft.Transport {
			return pipelines{NetworkTransport: raftnode.NetworkTransport(tr).(*raft.NetworkTransport), n: &opened}
		}
		n, err := raftnode.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		if i == 0 {
			testcluster.Eventually(t, "n1 leads", func() error {
				if !n.IsLeader() {
					return errors.New("not yet")
				}
				return nil
			})
			continue
		}
		testcluster.Eventually(t, "join "+cfg.NodeID, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return nodes[0].Join(ctx, cfg.NodeID, n.RaftAddr(), cfg.APIAddr)
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var last fsm.RaftIndex
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				res, err := proposeAnywhere(ctx, nodes, bigDeclare(t, fmt.Sprintf("q%d-%d", w, i), 64<<10))
				if err == nil {
					err = res.FirstError()
				}
				if err != nil {
					t.Errorf("propose: %v", err)
					return
				}
				mu.Lock()
				last = max(last, res.Index)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if opened.Load() == 0 {
		t.Fatal("raft opened no append pipeline: the test did not exercise pipelining")
	}
	var ref []byte
	for _, n := range nodes {
		if _, err := n.WaitIndex(ctx, last-1); err != nil {
			t.Fatalf("%s: %v", n.ID(), err)
		}
		var buf bytes.Buffer
		var werr error
		if err := n.Read(ctx, raftnode.Stale, func(s *fsm.State) { werr = s.WriteSnapshot(&buf) }); err != nil || werr != nil {
			t.Fatal(err, werr)
		}
		if ref == nil {
			ref = buf.Bytes()
		} else if !bytes.Equal(ref, buf.Bytes()) {
			t.Fatalf("%s's state differs from n1's", n.ID())
		}
	}
}

// proposeAnywhere proposes cmd through whichever node leads, retrying with
// the same request id until ctx ends.
func proposeAnywhere(ctx context.Context, nodes []*raftnode.Node, cmd fsm.Command) (fsm.Result, error) {
	for {
		for _, n := range nodes {
			if !n.IsLeader() {
				continue
			}
			res, err := n.Propose(ctx, cmd)
			if !errors.Is(err, raftnode.ErrNotLeader) && !errors.Is(err, raftnode.ErrUnknownOutcome) {
				return res, err
			}
		}
		select {
		case <-ctx.Done():
			return fsm.Result{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
