package raftnode

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/hashicorp/raft"

	"github.com/batonhq/baton/audit"
	"github.com/batonhq/baton/fsm"
)

// keepDigests is how many digests a node keeps (the newest). Peers compare at
// indexes both hold, so a peer up to keepDigests marks behind is still
// compared.
const keepDigests = 32

// digestMagic starts every digest's input: a change of what is hashed gets a
// new one, so that two builds never compare unlike digests as if alike.
var digestMagic = []byte("baton digest 1\x00")

// Digest is one replica's fingerprint, at a raft index agreed through an
// fsm.MarkDigest, of its state machine and its audit log: SHA-256 of the
// canonical state encoding (fsm.State.WriteSnapshot), the audit log's bounds
// and the encoding of its newest event. Replicas that applied the same
// entries hold the same digest at the same index (invariant 8).
type Digest struct {
	Index fsm.RaftIndex
	Sum   [sha256.Size]byte
}

// String returns the sum in hex.
func (d Digest) String() string { return hex.EncodeToString(d.Sum[:]) }

// ParseDigest builds a Digest from its index and its sum in hex, as
// GET /v1/cluster/status reports them.
func ParseDigest(index uint64, sum string) (Digest, error) {
	d := Digest{Index: fsm.RaftIndex(index)}
	if len(sum) != 2*sha256.Size {
		return Digest{}, fmt.Errorf("raftnode: digest at %d: %d hex digits, want %d", index, len(sum), 2*sha256.Size)
	}
	if _, err := hex.Decode(d.Sum[:], []byte(sum)); err != nil {
		return Digest{}, fmt.Errorf("raftnode: digest at %d: %w", index, err)
	}
	if index == 0 {
		return Digest{}, errors.New("raftnode: digest at index 0")
	}
	return d, nil
}

// Digests returns this node's most recent digests, oldest first (at most 32).
// A node has none until it applies a mark, and forgets them when it restores
// a snapshot.
func (n *Node) Digests() []Digest {
	p := n.machine.digests.Load()
	if p == nil {
		return nil
	}
	return append([]Digest(nil), (*p)...)
}

// MarkDigest proposes a digest mark now and returns the index it was applied
// at; every replica fingerprints itself there. The leader does this by itself
// every DigestInterval; tests and operators may ask for one. It returns what
// Apply returns: ErrNotLeader on a follower, ErrUnknownOutcome, ErrShutdown.
func (n *Node) MarkDigest(ctx context.Context) (fsm.RaftIndex, error) {
	res, err := n.Apply(ctx, fsm.Command{
		Header: fsm.Header{Actor: "node:" + n.cfg.NodeID, Cause: "digest mark"},
		Body:   fsm.MarkDigest{},
	})
	if err != nil {
		return 0, err
	}
	if res.Err != nil {
		return 0, fmt.Errorf("raftnode: digest mark: %w", res.Err)
	}
	return res.Index, nil
}

// wireDigests gives the FSM adapter the node's clock and mark age bound, and
// has a snapshot restore reset the node's own divergence.
func (n *Node) wireDigests() {
	n.machine.now = n.now
	n.machine.digestMaxAge = digestMaxAge(n.cfg.DigestInterval)
	n.machine.onRestore = func() { n.div.reset(n.cfg.NodeID) }
}

// markLoop proposes a digest mark every DigestInterval while this node leads
// and the state moved since the last mark. A mark needs no request id: one
// lost to a leadership change is simply made again later.
func (n *Node) markLoop() {
	defer n.wg.Done()
	// ctx ends with the node, so that a mark waiting for a commit does not
	// hold Shutdown up.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		select {
		case <-n.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(n.cfg.DigestInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-tick.C:
		}
		if !n.IsLeader() || n.AppliedIndex() <= fsm.RaftIndex(n.machine.lastMark.Load()) {
			continue
		}
		mctx, mcancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		_, err := n.MarkDigest(mctx)
		mcancel()
		if err != nil && !errors.Is(err, ErrShutdown) && !errors.Is(err, ErrNotLeader) {
			n.log.Warn("digest mark", "err", err)
		}
	}
}

// markOf reports whether a committed entry, applied with result res, is a
// digest mark, and the leader time stamped into it. Only an entry whose tag
// byte says mark is decoded (again): marks are rare.
func markOf(l *raft.Log, res fsm.Result) (time.Time, bool) {
	if res.Err != nil || len(l.Data) < 2 || fsm.CommandType(l.Data[1]) != fsm.CmdMarkDigest {
		return time.Time{}, false
	}
	cmd, err := fsm.DecodeCommand(l.Data)
	if err != nil {
		return time.Time{}, false
	}
	if _, ok := cmd.Body.(fsm.MarkDigest); !ok {
		return time.Time{}, false
	}
	return time.Unix(0, cmd.Time), true
}

// digestMaxAge is the age (leader time against this node's clock) past which
// a mark is not fingerprinted: a node replaying its log at start would
// otherwise pay one full state encoding per old mark, for digests that leave
// the window before anyone compares them. Skipping one changes no state.
func digestMaxAge(interval time.Duration) time.Duration {
	return max(2*keepDigests*interval, 10*time.Minute)
}

// takeDigest fingerprints the state and the audit log, on the FSM goroutine,
// right after the mark at idx and the events before it reached both: nothing
// else can change them meanwhile. It keeps the newest keepDigests.
func (m *machine) takeDigest(idx fsm.RaftIndex) {
	m.lastMark.Store(uint64(idx))
	d, err := m.digest(idx)
	if err != nil {
		m.log.Error("cannot take the state digest; this mark goes unchecked", "index", idx, "err", err)
		return
	}
	var list []Digest
	if p := m.digests.Load(); p != nil {
		list = *p
	}
	if len(list) >= keepDigests {
		list = list[len(list)-keepDigests+1:]
	}
	list = append(append(make([]Digest, 0, keepDigests), list...), d)
	m.digests.Store(&list)
}

// digest computes the digest at idx: SHA-256 over digestMagic, the state's
// canonical encoding and its length, the audit log's bounds, and the length
// and encoding of its newest event (the head). The audit log's content is a
// function of the applied entries only (its trims run per raft index, not per
// batch), so every replica hashes the same bytes at the same index.
func (m *machine) digest(idx fsm.RaftIndex) (Digest, error) {
	h := sha256.New()
	h.Write(digestMagic)
	cw := &countWriter{w: h}
	var err error
	m.read(func(s *fsm.State) {
		if s.AppliedIndex() != idx {
			err = fmt.Errorf("state at %d, not at the mark", s.AppliedIndex())
			return
		}
		err = s.WriteSnapshot(cw)
	})
	if err != nil {
		return Digest{}, fmt.Errorf("raftnode: digest at %d: state: %w", idx, err)
	}
	b := m.audit.Bounds()
	page, err := m.audit.Query(context.Background(), audit.Query{Desc: true, Limit: 1})
	if err != nil {
		return Digest{}, fmt.Errorf("raftnode: digest at %d: audit head: %w", idx, err)
	}
	var head []byte
	if len(page.Events) > 0 {
		head = fsm.EncodeEvent(page.Events[0])
	}
	for _, v := range []uint64{cw.n, uint64(b.First), uint64(b.Last), uint64(b.Base), uint64(b.Count), uint64(b.Refs), uint64(len(head))} {
		putU64(h, v)
	}
	h.Write(head)
	d := Digest{Index: idx}
	h.Sum(d.Sum[:0])
	return d, nil
}

func putU64(h hash.Hash, v uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	h.Write(b[:])
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w hash.Hash
	n uint64
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += uint64(len(p))
	return c.w.Write(p)
}
