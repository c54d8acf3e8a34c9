// Package fsmtest drives the fsm state machine from scenario files and from Go
// tests. Env wraps a State with a clock, raft indexes, a strict HistoryChecker and
// the invariant checks that run after every command, so a scenario or a property
// test only says what happens and reads what came out.
package fsmtest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/batonhq/baton/fsm"
)

// Env is an fsm.State under test.
type Env struct {
	tb      testing.TB
	State   *fsm.State
	History *fsm.HistoryChecker
	// Events is every event applied so far, in order (the full audit trail,
	// checkpoints included).
	Events []fsm.Event
	// Now is the leader time stamped into the next command (Unix nanoseconds).
	Now   int64
	index fsm.RaftIndex
	term  uint64
}

// New returns an Env on an empty state with the default config.
func New(tb testing.TB) *Env {
	tb.Helper()
	return NewWithConfig(tb, fsm.DefaultConfig())
}

// NewWithConfig returns an Env on an empty state bounded by cfg.
func NewWithConfig(tb testing.TB, cfg fsm.Config) *Env {
	tb.Helper()
	s, err := fsm.New(cfg)
	if err != nil {
		tb.Fatalf("fsm.New: %v", err)
	}
	return &Env{tb: tb, State: s, History: fsm.NewHistoryChecker(true), Now: 1_000_000_000, term: 1}
}

// Index returns the raft index of the last applied command.
func (e *Env) Index() fsm.RaftIndex { return e.index }

// Apply applies cmd at the next raft index and checks every invariant: the
// state's, the history's, and that a rejected command changed nothing.
func (e *Env) Apply(cmd fsm.Command) fsm.Result {
	e.tb.Helper()
	if cmd.Time == 0 {
		cmd.Time = e.Now
	}
	before := e.snapshot()
	// Commands travel encoded through raft; so do they here.
	data, err := fsm.EncodeCommand(cmd)
	if err != nil {
		e.tb.Fatalf("encode %T: %v", cmd.Body, err)
	}
	// raftnode applies the entry's bytes; an entry that does not decode is
	// refused like one that fails the check.
	e.index++
	res, err := e.State.ApplyEntry(e.index, e.term, data)
	if err != nil {
		e.tb.Fatalf("apply %T: %v", cmd.Body, err)
	}
	if err := e.State.CheckInvariants(); err != nil {
		e.tb.Fatalf("after %T at %d: %v", cmd.Body, e.index, err)
	}
	for _, ev := range res.Events {
		if err := e.History.Check(ev); err != nil {
			e.tb.Fatalf("history: %v", err)
		}
	}
	if len(res.Events) == 0 && !bytes.Equal(before, e.snapshot()) && !e.onlyBookkeeping(before) {
		e.tb.Fatalf("%T at %d emitted nothing but changed the state", cmd.Body, e.index)
	}
	e.Events = append(e.Events, res.Events...)
	return res
}

// snapshot is the canonical encoding of the state's content.
func (e *Env) snapshot() []byte {
	var buf bytes.Buffer
	if err := e.State.WriteSnapshot(&buf); err != nil {
		e.tb.Fatalf("snapshot: %v", err)
	}
	return buf.Bytes()
}

// onlyBookkeeping reports whether the state differs from before only in what
// every command changes: the applied index, term and request table.
func (e *Env) onlyBookkeeping(before []byte) bool {
	prev, err := fsm.ReadSnapshot(bytes.NewReader(before), e.State.Config())
	if err != nil {
		e.tb.Fatalf("read snapshot: %v", err)
	}
	return fsm.SameContent(prev, e.State) == nil
}

// SnapshotRestore round-trips the state through its snapshot encoding, checks that
// the copy encodes byte for byte the same, and continues with the copy.
func (e *Env) SnapshotRestore() {
	e.tb.Helper()
	a := e.snapshot()
	s, err := fsm.ReadSnapshot(bytes.NewReader(a), e.State.Config())
	if err != nil {
		e.tb.Fatalf("restore: %v", err)
	}
	e.State = s
	if b := e.snapshot(); !bytes.Equal(a, b) {
		e.tb.Fatalf("restored state encodes differently (%d vs %d bytes)", len(a), len(b))
	}
}

// CheckReplay folds the audit trail from empty and compares it with the state
// (invariant 5).
func (e *Env) CheckReplay() {
	e.tb.Helper()
	r, err := fsm.Replay(e.State.Config(), e.Events)
	if err != nil {
		e.tb.Fatalf("replay: %v", err)
	}
	if err := fsm.SameContent(r, e.State); err != nil {
		e.tb.Fatalf("replay differs from live state: %v", err)
	}
}

// Incarnation returns a worker's current incarnation (0 if unknown).
func (e *Env) Incarnation(w fsm.WorkerID) fsm.Incarnation {
	wk, _ := e.State.Worker(w)
	return wk.Incarnation
}

// Partition returns a partition's state; it fails the test if it is unknown.
func (e *Env) Partition(id fsm.PartitionID) fsm.PartitionInfo {
	e.tb.Helper()
	p, ok := e.State.PartitionView(id)
	if !ok {
		e.tb.Fatalf("unknown partition %s", id)
	}
	return p
}

// FormatResult renders a result as scenario output: one event per line, then
// rejections.
func FormatResult(r fsm.Result) string {
	var sb strings.Builder
	if r.Duplicate {
		fmt.Fprintf(&sb, "duplicate of index %d\n", r.Index)
	}
	for _, ev := range r.Events {
		sb.WriteString(ev.String())
		sb.WriteByte('\n')
	}
	if r.Err != nil {
		fmt.Fprintf(&sb, "rejected: %s\n", code(r.Err))
	}
	for i, err := range r.Items {
		if err != nil {
			fmt.Fprintf(&sb, "item %d rejected: %s\n", i, code(err))
		}
	}
	if sb.Len() == 0 {
		return "ok\n"
	}
	return sb.String()
}

func code(err error) string {
	if r, ok := err.(*fsm.RejectError); ok {
		return string(r.Code)
	}
	return err.Error()
}

// FormatState renders workers, partitions and handoffs, one per line.
func FormatState(s *fsm.State) string {
	var sb strings.Builder
	for _, w := range s.Workers() {
		fmt.Fprintf(&sb, "worker %s\n", w)
	}
	for _, p := range s.Partitions("", 0) {
		fmt.Fprintf(&sb, "partition %s\n", p.Partition)
	}
	for _, h := range s.Handoffs() {
		to := string(h.To)
		if to == "" {
			to = "(release)"
		}
		fmt.Fprintf(&sb, "handoff %s %s %s->%s epoch=%d drained=%v", h.ID, h.Partition, h.From, to, h.Epoch, h.Drained)
		if h.Drained {
			fmt.Fprintf(&sb, " through_seq=%d", h.ThroughSeq)
		}
		sb.WriteByte('\n')
	}
	if s.Paused() {
		sb.WriteString("rebalancing paused\n")
	}
	if sb.Len() == 0 {
		return "empty\n"
	}
	return sb.String()
}
