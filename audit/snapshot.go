package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"go.etcd.io/bbolt"

	"github.com/batonhq/baton/fsm"
)

// Snapshot chunking: each WriteTo transaction reads at most this much.
const (
	chunkEvents = 4096
	chunkBytes  = 1 << 20
	// restoreBatch is the number of events Restore writes per transaction.
	restoreBatch = 10_000
)

// Snap is a point-in-time copy of the log, taken by Snapshot and written out by
// WriteTo (on another goroutine). Release it when done.
type Snap struct {
	l         *Log
	gen       uint64
	clock     uint64
	upTo      fsm.RaftIndex
	baseIndex fsm.RaftIndex
	base      []byte // immutable
	released  atomic.Bool
}

// Snapshot captures the log as of raft index upTo (raftnode's applied index).
// Call it on the FSM goroutine, between Appends. It is cheap: it takes the
// already-encoded base state and the bounds, and from then on Append keeps every
// event it deletes (by retention or checkpoint compaction) in a side bucket
// until the Snap is released, so WriteTo sees exactly what the log held now.
// Retention itself is not delayed, so replicas keep trimming at the same points.
// It returns ErrBelowBase if upTo is below the base index, ErrClosed after
// Close.
func (l *Log) Snapshot(upTo fsm.RaftIndex) (*Snap, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	v := l.view.Load()
	if upTo < v.bounds.Base {
		return nil, fmt.Errorf("%w: %d < %d", ErrBelowBase, upTo, v.bounds.Base)
	}
	l.snaps.Add(1)
	return &Snap{l: l, gen: v.gen, clock: v.clock, upTo: upTo, baseIndex: v.bounds.Base, base: v.base}, nil
}

// Release ends the snapshot; the next Append drops the events kept for it. It
// is idempotent. Call it after WriteTo has returned.
func (s *Snap) Release() {
	if !s.released.Swap(true) {
		s.l.snaps.Add(-1)
	}
}

// WriteTo writes the snapshot section to w: the base state, then every event
// retained at Snapshot time with index <= upTo, in index order (see framing.go
// for the format). It reads in short transactions of a few thousand events, so
// it never holds bbolt's remap lock for long. It returns ErrSnapshotStale if a
// Restore replaced the log meanwhile, ErrReleased after Release, ErrClosed after
// Close, or w's error; the caller then discards what was written.
func (s *Snap) WriteTo(w io.Writer) (int64, error) {
	if s.released.Load() {
		return 0, ErrReleased
	}
	fw := newFrameWriter(w)
	head := binary.AppendUvarint(nil, uint64(s.baseIndex))
	head = binary.AppendUvarint(head, uint64(s.upTo))
	head = binary.AppendUvarint(head, uint64(len(s.base)))
	fw.record(recHeader, head)
	for b := s.base; len(b) > 0; {
		n := min(len(b), baseChunk)
		fw.record(recBase, b[:n])
		b = b[n:]
	}
	var after []byte
	count := uint64(0)
	for fw.err == nil {
		evs, last, err := s.chunk(after)
		if err != nil {
			return fw.n, err
		}
		for _, e := range evs {
			fw.record(recEvent, e)
		}
		count += uint64(len(evs))
		if last == nil {
			break
		}
		after = last
	}
	fw.record(recEnd, binary.AppendUvarint(nil, count))
	return fw.n, fw.finish()
}

// chunk reads the next events after key after (nil: from the start), merging
// the events bucket with the events deleted since the snapshot. last is the key
// of the last event returned when more may follow, nil at the end.
func (s *Snap) chunk(after []byte) (evs [][]byte, last []byte, err error) {
	if s.released.Load() {
		return nil, nil, ErrReleased
	}
	if s.l.closed.Load() {
		return nil, nil, ErrClosed
	}
	end := maxKey(s.upTo)
	err = s.l.db.View(func(tx *bbolt.Tx) error {
		if gen, err := currentGen(tx); err != nil {
			return err
		} else if gen != s.gen {
			return ErrSnapshotStale
		}
		bs, err := openGen(tx, s.gen)
		if err != nil {
			return err
		}
		// The events and checkpoint records stored now, and the ones
		// deleted (trimmed, or checkpoints replaced) since the snapshot was
		// taken; those deleted before it are not part of it.
		m := newMerged(bs.events.Cursor(), bs.cev.Cursor(), &heldAfter{c: bs.held.Cursor(), clock: s.clock})
		var k, v []byte
		if after == nil {
			k, v = m.First()
		} else if k, v = m.Seek(after); bytes.Equal(k, after) {
			k, v = m.Next()
		}
		size := 0
		for ; ; k, v = m.Next() {
			if k == nil || bytes.Compare(k, end) > 0 {
				last = nil
				return nil
			}
			evs = append(evs, bytes.Clone(v))
			size += len(v)
			if len(evs) == chunkEvents || size >= chunkBytes {
				last = bytes.Clone(k)
				return nil
			}
		}
	})
	if err != nil {
		return nil, nil, s.l.translate(err)
	}
	return evs, last, nil
}

// Restore replaces the whole log with a section written by Snap.WriteTo, read
// from r. It reads exactly the section's bytes, so r may carry more after it.
// The new content is built beside the current one, in transactions of
// restoreBatch events, and swapped in by one final transaction; on any error
// the log keeps its previous content. Open Snaps of the previous content fail.
// Call it on the FSM goroutine. It returns an error wrapping
// ErrInvalidSnapshot for bad input, ErrClosed after Close, or bbolt's error.
func (l *Log) Restore(r io.Reader) error {
	if l.closed.Load() {
		return ErrClosed
	}
	oldGen := l.view.Load().gen
	newGen := oldGen + 1
	if err := l.db.Update(func(tx *bbolt.Tx) error { return createGen(tx, newGen) }); err != nil {
		return l.translate(err)
	}
	rs := &restorer{l: l, gen: newGen}
	err := rs.run(r)
	if err == nil {
		err = l.db.Update(func(tx *bbolt.Tx) error { return rs.swap(tx, oldGen) })
	}
	if err != nil {
		_ = l.db.Update(func(tx *bbolt.Tx) error {
			if tx.Bucket(genName(newGen)) != nil {
				return tx.DeleteBucket(genName(newGen))
			}
			return nil
		})
		var bad *badInput
		if errors.As(err, &bad) {
			return fmt.Errorf("%w: %w", ErrInvalidSnapshot, bad.err)
		}
		return l.translate(err)
	}
	return nil
}

// badInput marks a Restore error caused by the input rather than the database.
type badInput struct{ err error }

func (b *badInput) Error() string { return b.err.Error() }

func bad(format string, args ...any) error { return &badInput{fmt.Errorf(format, args...)} }

// restorer builds a new generation from a section.
type restorer struct {
	l          *Log
	gen        uint64
	baseIndex  fsm.RaftIndex
	upTo       fsm.RaftIndex
	base       []byte
	state      *fsm.State // the base state, then with the events above the base folded in
	tail, refs uint64
}

func (rs *restorer) run(r io.Reader) error {
	fr, err := newFrameReader(r)
	if err != nil {
		return &badInput{err}
	}
	next := func() (byte, []byte, error) {
		kind, data, ok, err := fr.next()
		if err != nil {
			return 0, nil, &badInput{err}
		}
		if !ok {
			return 0, nil, bad("section ends without an end record")
		}
		return kind, data, nil
	}
	kind, data, err := next()
	if err != nil {
		return err
	}
	if kind != recHeader {
		return bad("first record is of kind %d, not the header", kind)
	}
	h, err := uvarints(data, 3)
	if err != nil {
		return &badInput{fmt.Errorf("header: %w", err)}
	}
	rs.baseIndex, rs.upTo = fsm.RaftIndex(h[0]), fsm.RaftIndex(h[1])
	if rs.baseIndex > rs.upTo || h[2] > maxBaseLen {
		return bad("header: base index %d, snapshot index %d, base length %d", h[0], h[1], h[2])
	}
	for uint64(len(rs.base)) < h[2] {
		if kind, data, err = next(); err != nil {
			return err
		}
		if kind != recBase || uint64(len(rs.base)+len(data)) > h[2] {
			return bad("base state: record of kind %d, %d of %d bytes read", kind, len(rs.base), h[2])
		}
		rs.base = append(rs.base, data...)
	}
	if rs.state, err = fsm.ReadSnapshot(bytes.NewReader(rs.base), rs.l.cfg.FSM); err != nil {
		return &badInput{fmt.Errorf("base state: %w", err)}
	}
	if rs.state.AppliedIndex() != rs.baseIndex {
		return bad("base state at index %d, header says %d", rs.state.AppliedIndex(), rs.baseIndex)
	}
	var batch []fsm.Event
	var prev []byte
	count := uint64(0)
	// The log keeps one checkpoint per partition above the base (Append
	// compacts the others away), so a genuine section holds no more.
	checkpointed := map[fsm.PartitionID]bool{}
	for {
		if kind, data, err = next(); err != nil {
			return err
		}
		if kind == recEnd {
			break
		}
		if kind != recEvent {
			return bad("record of kind %d among the events", kind)
		}
		ev, err := fsm.DecodeEvent(data)
		if err != nil {
			return &badInput{fmt.Errorf("event %d: %w", count, err)}
		}
		key := evKey(ev.Index, ev.Seq)
		switch {
		case prev != nil && bytes.Compare(key, prev) <= 0:
			return bad("event %d.%d out of order", ev.Index, ev.Seq)
		case ev.Index > rs.upTo:
			return bad("event %d.%d above the snapshot index %d", ev.Index, ev.Seq, rs.upTo)
		case ev.Index <= rs.baseIndex && !isRef(rs.state, ev):
			return bad("event %d.%d at or below the base index explains nothing", ev.Index, ev.Seq)
		}
		// The history above the base must fold onto it, as Replay and
		// every later trim will fold it: a section whose events do not fit
		// its base state would restore and then fail the first trim.
		// Events at or below the base all come first (key order), so the
		// base state is complete for the isRef checks above until then.
		if ev.Index > rs.baseIndex {
			if err := rs.state.Fold(ev); err != nil {
				return bad("event %d.%d does not fold onto the base state: %w", ev.Index, ev.Seq, err)
			}
			if cp, ok := ev.Body.(fsm.Checkpointed); ok {
				if checkpointed[cp.Partition] {
					return bad("event %d.%d: a second checkpoint of %s", ev.Index, ev.Seq, cp.Partition)
				}
				checkpointed[cp.Partition] = true
			}
		}
		prev = key
		count++
		if batch = append(batch, ev); len(batch) == restoreBatch {
			if err := rs.write(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	n, err := uvarints(data, 1)
	if err != nil || n[0] != count {
		return bad("end record: %d events read, record %x", count, data)
	}
	if err := rs.state.CheckInvariants(); err != nil {
		return bad("the history replays into a state that breaks fsm's invariants: %w", err)
	}
	if _, _, ok, err := fr.next(); err != nil || ok {
		return bad("records after the end record (%v)", err)
	}
	if err := fr.trailer(); err != nil {
		return &badInput{err}
	}
	return rs.write(batch)
}

// write stores a batch of events in the new generation.
func (rs *restorer) write(batch []fsm.Event) error {
	if len(batch) == 0 {
		return nil
	}
	return rs.l.db.Update(func(tx *bbolt.Tx) error {
		bs, err := openGen(tx, rs.gen)
		if err != nil {
			return err
		}
		w := &writer{l: rs.l, bs: bs, gen: rs.gen, base: rs.baseIndex}
		for _, ev := range batch {
			key := evKey(ev.Index, ev.Seq)
			if ev.Index <= rs.baseIndex {
				if err := w.put(key, fsm.EncodeEvent(ev), ev); err != nil {
					return err
				}
				if err := bs.refs.Put(key, []byte{1}); err != nil {
					return err
				}
				rs.refs++
				continue
			}
			w.tail = rs.tail
			if _, err := w.add(ev); err != nil {
				return &badInput{fmt.Errorf("event %d.%d: %w", ev.Index, ev.Seq, err)}
			}
			rs.tail = w.tail
		}
		return nil
	})
}

// swap makes the new generation current and drops the old one.
func (rs *restorer) swap(tx *bbolt.Tx, oldGen uint64) error {
	if gen, err := currentGen(tx); err != nil || gen != oldGen {
		return fmt.Errorf("%w: generation changed during restore", ErrCorrupt)
	}
	bs, err := openGen(tx, rs.gen)
	if err != nil {
		return err
	}
	w := &writer{l: rs.l, bs: bs, gen: rs.gen, base: rs.baseIndex,
		tail: rs.tail, refs: rs.refs, baseBytes: rs.base}
	if err := w.save(); err != nil {
		return err
	}
	if err := tx.Bucket(rootBucket).Put(keyGen, u64(rs.gen)); err != nil {
		return err
	}
	if err := tx.DeleteBucket(genName(oldGen)); err != nil {
		return err
	}
	v, err := w.view()
	if err != nil {
		return err
	}
	tx.OnCommit(func() { rs.l.view.Store(v) })
	return nil
}
