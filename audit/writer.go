package audit

import (
	"bytes"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/batonhq/baton/fsm"
)

// writer is one write transaction's view of the current generation.
type writer struct {
	l  *Log
	bs *buckets

	gen               uint64
	base              fsm.RaftIndex
	tail, refs, clock uint64
	// baseBytes is the encoded base state when it is known in memory (set by
	// a trim, Open and Restore).
	baseBytes []byte
	// hold: deleted events go to the held bucket, for open snapshots.
	hold  bool
	dirty bool
	// last is the newest stored key as far as add knows (nil: not read yet).
	last []byte
}

func (l *Log) writer(tx *bbolt.Tx, hold bool) (*writer, error) {
	bs, gen, err := openCurrent(tx)
	if err != nil {
		return nil, err
	}
	// Keys of these grow (almost) monotonically: pack their pages (bbolt splits
	// pages at FillPercent, 0.5 by default, which suits random inserts).
	bs.events.FillPercent, bs.time.FillPercent, bs.cev.FillPercent = 0.95, 0.95, 0.95
	w := &writer{l: l, bs: bs, gen: gen, hold: hold}
	var base uint64
	for _, c := range []struct {
		key []byte
		to  *uint64
	}{{infoIndex, &base}, {infoTail, &w.tail}, {infoRefs, &w.refs}, {infoClock, &w.clock}} {
		if *c.to, err = getU64(bs.info, c.key); err != nil {
			return nil, err
		}
	}
	w.base = fsm.RaftIndex(base)
	return w, nil
}

// save writes the counters (and the base state, if it changed) and advances
// the clock.
func (w *writer) save() error {
	w.clock++
	puts := [][2][]byte{
		{infoIndex, u64(uint64(w.base))}, {infoTail, u64(w.tail)},
		{infoRefs, u64(w.refs)}, {infoClock, u64(w.clock)},
	}
	if w.baseBytes != nil {
		puts = append(puts, [2][]byte{infoBase, w.baseBytes})
	}
	for _, p := range puts {
		if err := w.bs.info.Put(p[0], p[1]); err != nil {
			return err
		}
	}
	return nil
}

// view summarizes the transaction's final state. It reads the transaction, so
// it runs before the commit; OnCommit publishes the result.
func (w *writer) view() (*view, error) {
	v := &view{gen: w.gen, clock: w.clock, base: w.baseBytes}
	if v.base == nil {
		v.base = w.l.view.Load().base // unchanged by this transaction
	}
	first, last := firstLast(w.bs)
	var err error
	if first != nil {
		if v.bounds.First, _, err = parseKey(first); err != nil {
			return nil, err
		}
	}
	if last != nil {
		if v.bounds.Last, _, err = parseKey(last); err != nil {
			return nil, err
		}
	}
	v.bounds.Base = w.base
	v.bounds.Count = int(w.tail + w.refs)
	v.bounds.Refs = int(w.refs)
	return v, nil
}

// firstLast returns the oldest and newest stored event keys, among the events
// and the checkpoint records (nil if there are none); the keys are bbolt's.
func firstLast(bs *buckets) (first, last []byte) {
	ec, cc := bs.events.Cursor(), bs.cev.Cursor()
	ef, _ := ec.First()
	cf, _ := cc.First()
	el, _ := ec.Last()
	cl, _ := cc.Last()
	first, last = ef, el
	if cf != nil && (first == nil || bytes.Compare(cf, first) < 0) {
		first = cf
	}
	if cl != nil && (last == nil || bytes.Compare(cl, last) > 0) {
		last = cl
	}
	return first, last
}

// add stores one event unless it is already there, folded away, or an older
// checkpoint. It reports whether it changed anything.
func (w *writer) add(ev fsm.Event) (bool, error) {
	if ev.Body == nil {
		return false, errors.New("event has no body")
	}
	if ev.Index <= w.base {
		return false, nil
	}
	key := evKey(ev.Index, ev.Seq)
	enc := fsm.EncodeEvent(ev)
	if w.last == nil {
		_, last := firstLast(w.bs)
		w.last = append([]byte{}, last...) // empty, not nil, for an empty log
	}
	if bytes.Compare(key, w.last) > 0 {
		w.last = key // the usual case: beyond the newest event, so not stored yet
	} else {
		old := w.bs.events.Get(key)
		if old == nil {
			old = w.bs.cev.Get(key)
		}
		if old != nil {
			if !bytes.Equal(old, enc) {
				return false, ErrConflict
			}
			return false, nil
		}
	}
	if cp, ok := ev.Body.(fsm.Checkpointed); ok {
		added, err := w.replaceCheckpoint(cp.Partition, key, enc)
		if !added || err != nil {
			return false, err
		}
	} else if err := w.put(key, enc, ev); err != nil {
		return false, err
	}
	w.tail++
	return true, nil
}

// replaceCheckpoint makes the checkpoint enc under key partition p's record,
// replacing (deleting) the one it supersedes. It reports false if a newer
// checkpoint is already stored.
//
// The record is the event in the cev bucket, which is ordered by event key
// like the events bucket, and the ckpt pointer to it. Neither has secondary
// index entries: queries merge the records back in (query.go). So a
// replacement is two small-bucket updates in place of the delete and insert
// of an event with four index entries each.
func (w *writer) replaceCheckpoint(p fsm.PartitionID, key, enc []byte) (bool, error) {
	if prev := w.bs.ckpt.Get([]byte(p)); prev != nil {
		if len(prev) != keyLen {
			return false, fmt.Errorf("%w: checkpoint of %s points at %x", ErrCorrupt, p, prev)
		}
		if bytes.Compare(prev, key) >= 0 {
			return false, nil
		}
		if err := w.removeCheckpoint(bytes.Clone(prev)); err != nil {
			return false, err
		}
		w.tail--
	}
	w.dirty = true
	if err := w.bs.cev.Put(key, enc); err != nil {
		return false, err
	}
	return true, w.bs.ckpt.Put([]byte(p), key)
}

// put stores an event and its index entries.
func (w *writer) put(key, enc []byte, ev fsm.Event) error {
	w.dirty = true
	if err := w.bs.events.Put(key, enc); err != nil {
		return err
	}
	for _, e := range indexEntries(ev, key) {
		if err := w.bs.byName(e.bucket).Put(e.key, []byte{}); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes a stored event and its index entries; while snapshots are
// open the event moves to the held bucket. Counters are the caller's.
func (w *writer) remove(key []byte) error {
	enc := bytes.Clone(w.bs.events.Get(key))
	ev, err := fsm.DecodeEvent(enc)
	if err != nil {
		return fmt.Errorf("%w: event %x: %w", ErrCorrupt, key, err)
	}
	w.dirty = true
	for _, e := range indexEntries(ev, key) {
		if err := w.bs.byName(e.bucket).Delete(e.key); err != nil {
			return err
		}
	}
	if err := w.bs.events.Delete(key); err != nil {
		return err
	}
	return w.holdDeleted(key, enc)
}

// removeCheckpoint deletes a checkpoint record's event (the pointer is the
// caller's), which must be stored; while snapshots are open it moves to the
// held bucket. Counters are the caller's.
func (w *writer) removeCheckpoint(key []byte) error {
	// One seek for the check, the held copy and the delete.
	c := w.bs.cev.Cursor()
	k, enc := c.Seek(key)
	if !bytes.Equal(k, key) {
		return fmt.Errorf("%w: checkpoint %x is not stored", ErrCorrupt, key)
	}
	if w.hold {
		enc = bytes.Clone(enc)
	}
	w.dirty = true
	if err := c.Delete(); err != nil {
		return err
	}
	return w.holdDeleted(key, enc)
}

// holdDeleted keeps a deleted event for the open snapshots, if any, stamped
// with this transaction's clock: snapshots taken before it include the event.
func (w *writer) holdDeleted(key, enc []byte) error {
	if !w.hold {
		return nil
	}
	return w.bs.held.Put(bytes.Clone(key), append(u64(w.clock+1), enc...))
}

// clearHeld empties the held bucket once no snapshot is open.
func (w *writer) clearHeld() error {
	if k, _ := w.bs.held.Cursor().First(); k == nil {
		return nil
	}
	w.dirty = true
	if err := w.bs.gen.DeleteBucket(bHeld); err != nil {
		return err
	}
	b, err := w.bs.gen.CreateBucket(bHeld)
	w.bs.held = b
	return err
}
