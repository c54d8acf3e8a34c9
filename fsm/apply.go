package fsm

import (
	"errors"
	"fmt"
)

// Result is what Apply returns for one command.
type Result struct {
	// Index is the raft index the command was applied at. For a duplicate it is
	// the index of the first application.
	Index RaftIndex
	// Events are the events the command produced, in order, already folded into
	// the state. Empty for rejections and duplicates.
	Events []Event
	// Err is set (to a *RejectError) when the whole command was rejected.
	Err error
	// Items holds one entry per item of a batch command: nil if the item was
	// accepted, a *RejectError if it was rejected. Nil for single commands and
	// when Err is set.
	Items []error
	// Duplicate is set when the request id had already been applied: the other
	// fields repeat the first outcome and nothing was emitted.
	Duplicate bool
}

// Rejected reports how many items were rejected (1 for a rejected command).
func (r Result) Rejected() int {
	if r.Err != nil {
		return 1
	}
	n := 0
	for _, e := range r.Items {
		if e != nil {
			n++
		}
	}
	return n
}

// FirstError returns the whole-command error, or else the first item error.
func (r Result) FirstError() error {
	if r.Err != nil {
		return r.Err
	}
	for _, e := range r.Items {
		if e != nil {
			return e
		}
	}
	return nil
}

// ApplyEntry decodes the data of a committed log entry and applies it at raft
// index idx and term, as Apply does.
//
// An entry that does not decode (malformed, or a field beyond its limit) is
// refused exactly like a command that fails Config.CheckCommand: the result
// carries the rejection and one EntryRejected event, and nothing else changes.
// Every replica does the same with the same bytes, so no committed entry can
// stop a node. ApplyEntry returns an error, and changes nothing, only when this
// replica must not go on: the bytes fail their checksum (ErrChecksum: they were
// corrupted here, and the other replicas hold the real ones), or a newer build
// wrote them (ErrUnsupportedVersion, ErrUnknownCommand) and this one cannot
// apply them as that build does.
func (s *State) ApplyEntry(idx RaftIndex, term uint64, data []byte) (Result, error) {
	cmd, err := DecodeCommand(data)
	switch {
	case err == nil:
		return s.Apply(idx, term, cmd), nil
	case errors.Is(err, ErrChecksum), errors.Is(err, ErrUnsupportedVersion), errors.Is(err, ErrUnknownCommand):
		return Result{}, fmt.Errorf("fsm: entry %d: %w", idx, err)
	}
	if idx <= s.applied {
		return Result{Index: idx, Err: reject(CodeInvalidArgument, "index %d already applied (at %d)", idx, s.applied)}, nil
	}
	s.applied, s.term = idx, term
	var t CommandType
	if len(data) > 1 {
		t = CommandType(data[1])
	}
	return s.refuse(idx, term, 0, t, reject(CodeInvalidArgument, "undecodable entry: %v", err)), nil
}

// Apply applies one committed command at raft index idx and term.
//
// It checks the command (Config.CheckCommand), validates it against the state,
// produces events, folds them, and returns them. A command that fails the check
// is refused with an EntryRejected event; a command the state rejects, or a
// rejected item of a batch command, changes nothing but the applied index. The
// index must be larger than the last applied one; raft guarantees that, and an
// older index is rejected without effect.
func (s *State) Apply(idx RaftIndex, term uint64, cmd Command) Result {
	if idx <= s.applied {
		return Result{Index: idx, Err: reject(CodeInvalidArgument, "index %d already applied (at %d)", idx, s.applied)}
	}
	s.applied, s.term = idx, term
	if err := checkWith(&s.scratch.w, &s.cfg, cmd); err != nil {
		var t CommandType
		if cmd.Body != nil {
			t = cmd.Body.Type()
		}
		return s.refuse(idx, term, max(cmd.Time, 0), t, err)
	}
	n := cmd.Body.items()
	var hash uint64
	if cmd.RequestID != "" {
		hash = cmd.Digest
		if hash == 0 {
			hash = bodyHash(&s.scratch, cmd.Body)
		}
		if prev, ok := s.requests.lookup(cmd.RequestID); ok {
			if prev.Hash != hash {
				return Result{Index: idx, Err: reject(CodeRequestIDReused,
					"request id %q was used at index %d for another command", cmd.RequestID, prev.Index)}
			}
			return prev.result(n)
		}
	}

	a := applier{s: s, idx: idx, term: term, hdr: cmd.Header}
	if n > 0 {
		a.items = make([]error, n)
	}
	a.dispatch(cmd.Body)
	res := Result{Index: idx, Events: a.events, Err: nil, Items: a.items}
	if a.err != nil {
		res.Err, res.Items = a.err, nil
	}
	if cmd.RequestID != "" {
		s.remember(cmd, hash, res)
	}
	return res
}

// refuse records an entry that failed to decode or check: one EntryRejected
// event (with no actor, cause or request id: the header is not to be trusted)
// and the rejection, and no other change.
func (s *State) refuse(idx RaftIndex, term uint64, time int64, t CommandType, err *RejectError) Result {
	a := applier{s: s, idx: idx, term: term, hdr: Header{Time: time}}
	a.emit(EntryRejected{Command: t, Code: err.Code, Reason: truncate(err.Msg, MaxCauseLen)})
	return Result{Index: idx, Events: a.events, Err: err}
}

// truncate shortens s to at most max bytes without splitting a UTF-8 sequence.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && s[cut]&0xc0 == 0x80 {
		cut--
	}
	return s[:cut]
}

func (s *State) remember(cmd Command, hash uint64, res Result) {
	e := requestEntry{ID: cmd.RequestID, Index: res.Index, Time: cmd.Time, Hash: hash}
	if res.Err != nil {
		e.Err = asReject(res.Err)
	}
	for i, err := range res.Items {
		if err != nil {
			e.Items = append(e.Items, itemReject{Item: i, Err: asReject(err)})
		}
	}
	s.requests.add(e)
	s.requests.evict(s.cfg.MaxRequestIDs, cmd.Time-int64(s.cfg.RequestIDTTL))
}

func asReject(err error) *RejectError {
	if r, ok := err.(*RejectError); ok {
		return r
	}
	return &RejectError{Code: CodeInvalidArgument, Msg: err.Error()}
}

// applier carries one command through decide and fold.
type applier struct {
	s      *State
	idx    RaftIndex
	term   uint64
	hdr    Header
	events []Event
	err    *RejectError // whole-command rejection
	items  []error
}

// emit stamps and folds one event. Decide code calls it only after validating,
// and fold never fails on a validated event.
func (a *applier) emit(b EventBody) {
	ev := Event{
		Meta: Meta{
			Index: a.idx, Seq: uint32(len(a.events)), Term: a.term, Time: a.hdr.Time,
			Actor: a.hdr.Actor, Cause: a.hdr.Cause, RequestID: a.hdr.RequestID,
		},
		Body: b,
	}
	a.s.fold(ev)
	a.events = append(a.events, ev)
}

// item records the outcome of item i.
func (a *applier) item(i int, err *RejectError) {
	if err != nil {
		a.items[i] = err
	}
}

func (a *applier) dispatch(b Body) {
	switch b := b.(type) {
	case Join:
		a.err = a.join(b)
	case Leave:
		a.err = a.leave(b)
	case Expire:
		a.err = a.expire(b)
	case RemoveWorker:
		a.err = a.removeWorker(b)
	case Declare:
		a.declare(b)
	case RemovePartitions:
		for i, p := range b.Partitions {
			a.item(i, a.removePartition(p))
		}
	case Claim:
		for i, it := range b.Items {
			a.item(i, a.claim(it))
		}
	case Prepare:
		for i, it := range b.Items {
			a.item(i, a.prepare(it))
		}
	case DrainReport:
		if a.err = a.reporter(b.Worker, b.Incarnation); a.err == nil {
			for i, it := range b.Items {
				a.item(i, a.drain(b.Worker, it))
			}
		}
	case Commit:
		for i, it := range b.Items {
			a.item(i, a.commit(it))
		}
	case ForceCommit:
		for i, it := range b.Items {
			a.item(i, a.forceCommit(it))
		}
	case Activate:
		if a.err = a.reporter(b.Worker, b.Incarnation); a.err == nil {
			for i, it := range b.Items {
				a.item(i, a.activate(b.Worker, it))
			}
		}
	case Abort:
		for i, it := range b.Items {
			a.item(i, a.abort(it))
		}
	case Release:
		if a.err = a.reporter(b.Worker, b.Incarnation); a.err == nil {
			for i, it := range b.Items {
				a.item(i, a.release(b.Worker, it))
			}
		}
	case Checkpoint:
		if a.err = a.reporter(b.Worker, b.Incarnation); a.err == nil {
			for i, it := range b.Items {
				a.item(i, a.checkpoint(b.Worker, it))
			}
		}
	case Cordon:
		a.err = a.cordon(b)
	case Pin:
		a.err = a.pin(b)
	case RegisterNode:
		a.err = a.registerNode(b)
	case RemoveNode:
		if a.s.nodes[b.Node] == "" {
			a.err = reject(CodeUnknownNode, "node %q", b.Node)
		} else {
			a.emit(NodeRemoved(b))
		}
	case MarkDigest:
		// Nothing: raftnode fingerprints the state at this index.
	case SetRebalance:
		if b.Paused != a.s.paused {
			a.emit(RebalanceSet(b))
		}
	default:
		a.err = reject(CodeUnknownCommand, "command type %T", b)
	}
}
