package raftnode

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/batonhq/baton/audit"
	"github.com/batonhq/baton/fsm"
)

// machine is the raft.FSM adapter, thin like rqlite's: it decodes entries, hands
// them to fsm with their index and term, appends the events to the audit log and
// publishes the new applied index. Apply, ApplyBatch, Snapshot and Restore run on
// raft's FSM goroutine; readers take the read lock.
type machine struct {
	log   *slog.Logger
	cfg   fsm.Config
	audit *audit.Log

	// mu guards state, touched and changed. Held for writing only while
	// applying a batch or swapping in a restored state.
	mu    sync.RWMutex
	state *fsm.State
	// touched is, per worker, the last index whose events changed what the
	// worker must do (checkpoints excluded): blocking assignment queries wait
	// on it instead of on every write.
	touched map[fsm.WorkerID]fsm.RaftIndex
	// structural is the last index whose events changed anything but a
	// checkpoint: the controller plans only when it moves.
	structural fsm.RaftIndex
	// changed is closed and replaced after every applied batch.
	changed chan struct{}
	onApply func(n, events, refused int)
	// onEvents, if set, sees every batch's events on the FSM goroutine, after
	// the audit log has them. It must not block.
	onEvents func([]fsm.Event)

	// digests holds the digests taken at the last keepDigests marks, oldest
	// first. The FSM goroutine replaces the slice, never changes one
	// published; anyone may load it.
	digests atomic.Pointer[[]Digest]
	// lastMark is the index of the last digest mark applied (FSM goroutine
	// writes, the mark loop reads).
	lastMark atomic.Uint64
	// now is the node's clock and digestMaxAge the age past which a mark is
	// not fingerprinted (see digestMaxAge).
	now          func() time.Time
	digestMaxAge time.Duration
	// onRestore, if set, runs on the FSM goroutine after a snapshot replaced
	// the state: the digests and any divergence found are about the state
	// that was replaced.
	onRestore func()
}

var (
	_ raft.FSM         = (*machine)(nil)
	_ raft.BatchingFSM = (*machine)(nil)
)

func newMachine(cfg fsm.Config, log *audit.Log, logger *slog.Logger) (*machine, error) {
	s, err := fsm.New(cfg)
	if err != nil {
		return nil, err
	}
	return &machine{
		log: logger, cfg: cfg, audit: log, state: s,
		touched: make(map[fsm.WorkerID]fsm.RaftIndex), changed: make(chan struct{}),
		now: time.Now, digestMaxAge: digestMaxAge(DefaultConfig().DigestInterval),
	}, nil
}

// Apply implements raft.FSM.
func (m *machine) Apply(l *raft.Log) any { return m.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch implements raft.BatchingFSM: one lock and one audit transaction per
// batch of committed entries. A digest mark ends a segment of the batch: the
// entries up to it reach the state and the audit log, the digest is taken,
// then the rest follows.
func (m *machine) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	var events []fsm.Event
	refused := 0
	flushed := 0 // events[:flushed] are in the audit log
	m.mu.Lock()
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		res, err := m.state.ApplyEntry(fsm.RaftIndex(l.Index), l.Term, l.Data)
		if err != nil {
			// Only bytes corrupted on this replica (their checksum fails) or
			// written by a newer build get here; an entry that is merely bad
			// was refused above, the same way on every replica. Applying
			// anything else would make this replica diverge from those that
			// hold the real bytes or understand them. Stop.
			m.mu.Unlock()
			panic(fmt.Sprintf("raftnode: cannot apply committed entry %d: %v", l.Index, err))
		}
		out[i] = res
		for _, ev := range res.Events {
			if b, ok := ev.Body.(fsm.EntryRejected); ok {
				refused++
				m.log.Error("refused a committed entry that a proposer did not check", "index", ev.Index,
					"command", b.Command, "code", b.Code, "reason", b.Reason)
				continue
			}
			if ev.Type() == fsm.EvCheckpointed {
				continue
			}
			m.structural = ev.Index
			for _, w := range ev.Workers() {
				m.touched[w] = ev.Index
			}
		}
		events = append(events, res.Events...)
		if at, ok := markOf(l, res); ok {
			m.mu.Unlock()
			m.appendAudit(events[flushed:], l.Index)
			flushed = len(events)
			if age := m.now().Sub(at); age <= m.digestMaxAge {
				m.takeDigest(fsm.RaftIndex(l.Index))
			} else {
				m.lastMark.Store(l.Index)
			}
			m.mu.Lock()
		}
	}
	m.mu.Unlock()
	m.appendAudit(events[flushed:], logs[len(logs)-1].Index)
	// Wake waiters only now, so that whoever wakes finds the batch in the
	// state and in the audit log alike.
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	if m.onApply != nil {
		m.onApply(len(logs), len(events), refused)
	}
	if m.onEvents != nil && len(events) > 0 {
		m.onEvents(events)
	}
	return out
}

// appendAudit appends applied events to the audit log. The audit log is part
// of the replicated state; a replica that cannot write it stops, and rebuilds
// it from the snapshot and log on restart.
func (m *machine) appendAudit(events []fsm.Event, last uint64) {
	if err := m.audit.Append(events); err != nil {
		panic(fmt.Sprintf("raftnode: audit append at %d: %v", last, err))
	}
}

// read runs fn on the state under the read lock.
func (m *machine) read(fn func(*fsm.State)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	fn(m.state)
}

// index returns the last applied command index and a channel closed at the next
// apply.
func (m *machine) index() (fsm.RaftIndex, <-chan struct{}) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.state.AppliedIndex(), m.changed
}

// workerIndex returns the last index that changed worker w's assignment and a
// channel closed at the next apply.
func (m *machine) workerIndex(w fsm.WorkerID) (fsm.RaftIndex, <-chan struct{}) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.touched[w], m.changed
}

// structuralIndex returns the last index that changed more than checkpoints,
// and a channel closed at the next apply.
func (m *machine) structuralIndex() (fsm.RaftIndex, <-chan struct{}) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.structural, m.changed
}

// snapshotMagic starts a node snapshot: the fsm state, then the audit log.
var snapshotMagic = []byte("BATONSNP\x01")

// maxStateBytes bounds the fsm section of a snapshot read back.
const maxStateBytes = 4 << 30

// Snapshot implements raft.FSM. It encodes the state now, on the FSM goroutine
// (so it is consistent with the applied index), and leaves the writing to Persist.
func (m *machine) Snapshot() (raft.FSMSnapshot, error) {
	var buf bytes.Buffer
	var idx fsm.RaftIndex
	var err error
	m.read(func(s *fsm.State) {
		idx = s.AppliedIndex()
		err = s.WriteSnapshot(&buf)
	})
	if err != nil {
		return nil, fmt.Errorf("raftnode: snapshot state: %w", err)
	}
	as, err := m.audit.Snapshot(idx)
	if err != nil {
		return nil, fmt.Errorf("raftnode: snapshot audit: %w", err)
	}
	return &snapshot{state: buf.Bytes(), audit: as}, nil
}

type snapshot struct {
	state []byte
	audit *audit.Snap
}

// Persist writes the snapshot: magic, the fsm state (length-prefixed), then the
// audit log's own section.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	err := func() error {
		w := bufio.NewWriterSize(sink, 256<<10)
		if _, err := w.Write(snapshotMagic); err != nil {
			return err
		}
		var n [binary.MaxVarintLen64]byte
		if _, err := w.Write(n[:binary.PutUvarint(n[:], uint64(len(s.state)))]); err != nil {
			return err
		}
		if _, err := w.Write(s.state); err != nil {
			return err
		}
		if _, err := s.audit.WriteTo(w); err != nil {
			return err
		}
		return w.Flush()
	}()
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("raftnode: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *snapshot) Release() { s.audit.Release() }

// Restore implements raft.FSM: it replaces the state and the audit log with the
// snapshot's. Everything before is discarded.
func (m *machine) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 256<<10)
	head := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, head); err != nil || !bytes.Equal(head, snapshotMagic) {
		return fmt.Errorf("raftnode: restore: not a baton snapshot")
	}
	n, err := binary.ReadUvarint(br)
	if err != nil || n > maxStateBytes {
		return fmt.Errorf("raftnode: restore: bad state length")
	}
	s, err := fsm.ReadSnapshot(io.LimitReader(br, int64(n)), m.cfg)
	if err != nil {
		return fmt.Errorf("raftnode: restore state: %w", err)
	}
	if err := m.audit.Restore(br); err != nil {
		return fmt.Errorf("raftnode: restore audit: %w", err)
	}
	m.mu.Lock()
	m.state = s
	m.structural = s.AppliedIndex()
	m.touched = make(map[fsm.WorkerID]fsm.RaftIndex)
	for _, w := range s.Workers() {
		m.touched[w.ID] = s.AppliedIndex()
	}
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	m.digests.Store(nil)
	if m.onRestore != nil {
		m.onRestore()
	}
	m.log.Info("restored snapshot", "index", s.AppliedIndex())
	return nil
}
