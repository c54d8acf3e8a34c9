package audit

import (
	"bytes"
	"fmt"
	"math"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/batonhq/baton/fsm"
)

// Retention keeps the log bounded without losing the meaning of the current
// state. The oldest events are folded into a base state (an fsm.State equal to
// folding every event trimmed so far) before they are deleted, so
//
//	Replay() = base state + every event above the base index
//
// still equals the live state (invariant 5). Events at or below the base index
// that explain the base state stay as reference records, for queries only: for
// every partition of the base state the PartitionsDeclared at its DeclaredIndex,
// the Claimed or Committed at its OwnerIndex and the Prepared of its pending
// handoff, and for every worker the WorkerJoined of its incarnation.
//
// Retention runs inside Append after each raft index that changed the log, and
// decides only from the stored content and Config, so replicas fed the same
// entries trim at the same points however raftnode batches them.

// retain trims if a bound is exceeded.
func (w *writer) retain() error {
	evs, upTo, err := w.trimPlan()
	if err != nil || len(evs) == 0 {
		return err
	}
	return w.trim(evs, upTo)
}

// olderBy reports whether t is more than d before newest, without overflow.
func olderBy(t, newest int64, d uint64) bool {
	return t < newest && uint64(newest)-uint64(t) > d
}

// stored is an event read back from the log, and where it is stored.
type stored struct {
	fsm.Event
	// ckpt: a checkpoint record (cev bucket), not in the events bucket.
	ckpt bool
}

// allEvents walks the stored events in key order: the events bucket and the
// checkpoint records merged (m.src 1 is a checkpoint record).
func allEvents(bs *buckets) *merged { return newMerged(bs.events.Cursor(), bs.cev.Cursor()) }

// decodeAt decodes the entry m returned last, which src says where it is
// stored.
func decodeAt(m *merged, k, v []byte) (stored, error) {
	if m.src == 1 {
		ev, err := decodeCheckpoint(k, v)
		return stored{ev, true}, err
	}
	ev, err := decodeStored(k, v)
	return stored{Event: ev}, err
}

// trimPlan returns the whole raft indexes to trim, oldest first, and the last
// of them; none if no bound is exceeded. It never includes the newest index.
func (w *writer) trimPlan() ([]stored, fsm.RaftIndex, error) {
	cfg := w.l.cfg
	need := 0
	if w.tail > uint64(cfg.MaxEvents+cfg.countSlack()) {
		need = int(w.tail) - cfg.MaxEvents
	}
	if need == 0 && cfg.MaxAge == 0 {
		return nil, 0, nil // the usual case, after every raft index
	}
	_, lastK := firstLast(w.bs)
	if lastK == nil {
		return nil, 0, nil
	}
	lastIdx, _, err := parseKey(lastK)
	if err != nil {
		return nil, 0, err
	}
	m := allEvents(w.bs)
	var newest int64
	ageOn := false
	if cfg.MaxAge > 0 {
		k, v := m.Seek(lastK)
		last, err := decodeAt(m, k, v)
		if err != nil {
			return nil, 0, err
		}
		newest = last.Time
		if k, v := m.Seek(evKey(w.base+1, 0)); k != nil {
			oldest, err := decodeAt(m, k, v)
			if err != nil {
				return nil, 0, err
			}
			ageOn = olderBy(oldest.Time, newest, uint64(cfg.MaxAge+cfg.ageSlack()))
		}
	}
	if need == 0 && !ageOn {
		return nil, 0, nil
	}
	var out []stored
	var upTo fsm.RaftIndex
	k, v := m.Seek(evKey(w.base+1, 0))
	for k != nil {
		idx, _, err := parseKey(k)
		if err != nil {
			return nil, 0, err
		}
		if idx >= lastIdx {
			break
		}
		var group []stored
		for ; k != nil; k, v = m.Next() {
			ev, err := decodeAt(m, k, v)
			if err != nil {
				return nil, 0, err
			}
			if ev.Index != idx {
				break
			}
			group = append(group, ev)
		}
		if len(out) >= need && !(ageOn && olderBy(group[0].Time, newest, uint64(cfg.MaxAge))) {
			break
		}
		out, upTo = append(out, group...), idx
	}
	return out, upTo, nil
}

// trim folds evs (whole raft indexes up to upTo) into the base state, keeps the
// ones that explain the new base as reference records, deletes the rest, and
// deletes the old reference records the new base no longer needs.
func (w *writer) trim(sts []stored, upTo fsm.RaftIndex) error {
	evs := make([]fsm.Event, len(sts))
	for i, st := range sts {
		evs[i] = st.Event
	}
	base, err := w.loadBase()
	if err != nil {
		return err
	}
	cands, err := w.oldRefs(base, evs)
	if err != nil {
		return err
	}
	if err := base.Fold(evs...); err != nil {
		return fmt.Errorf("%w: fold into the base state: %w", ErrCorrupt, err)
	}
	if err := clampCheckpoints(base, evs, upTo); err != nil {
		return err
	}
	for _, st := range sts {
		key := evKey(st.Index, st.Seq)
		switch {
		case st.ckpt:
			// A checkpoint record is its partition's latest checkpoint
			// (and never a reference record): its pointer goes with it.
			p := []byte(st.Body.(fsm.Checkpointed).Partition)
			if bytes.Equal(w.bs.ckpt.Get(p), key) {
				if err := w.bs.ckpt.Delete(p); err != nil {
					return err
				}
			}
			if err := w.removeCheckpoint(key); err != nil {
				return err
			}
		case isRef(base, st.Event):
			if err := w.bs.refs.Put(key, []byte{1}); err != nil {
				return err
			}
			w.refs++
		default:
			if err := w.remove(key); err != nil {
				return err
			}
		}
	}
	w.tail -= uint64(len(evs))
	for _, key := range cands {
		ev, err := decodeStored(key, w.bs.events.Get(key))
		if err != nil {
			return err
		}
		if isRef(base, ev) {
			continue
		}
		if err := w.bs.refs.Delete(key); err != nil {
			return err
		}
		if err := w.remove(key); err != nil {
			return err
		}
		w.refs--
	}
	var buf bytes.Buffer
	if err := base.WriteSnapshot(&buf); err != nil {
		return err
	}
	w.base, w.baseBytes, w.dirty = upTo, buf.Bytes(), true
	return nil
}

// clampCheckpoints raises the checkpoint of every owned partition evs touched
// to at least its resume point.
//
// Checkpoint compaction deletes a checkpoint once a newer one arrives, so when
// a trim stops between the two, the folded base misses the deleted one and its
// checkpoint lags the live state's at upTo. Folding is still exact in the end
// (the newest checkpoint is always retained or folded, and every other event
// that reads the checkpoint carries a through_seq at or above the true one),
// but the lagging base can break invariant 4 (checkpoint >= resume point), and
// fsm.ReadSnapshot refuses such a state. The true checkpoint is at least the
// resume point, so raising it there keeps the base at or below the truth and
// valid. The raise is a Checkpointed folded at upTo, which leaves the applied
// index and term alone.
func clampCheckpoints(base *fsm.State, evs []fsm.Event, upTo fsm.RaftIndex) error {
	seen := map[fsm.PartitionID]bool{}
	var fix []fsm.Event
	for _, ev := range evs {
		for _, id := range ev.Partitions() {
			if seen[id] {
				continue
			}
			seen[id] = true
			p, ok := base.PartitionView(id)
			if ok && p.Owner != "" && p.Checkpoint < p.ResumeAfter {
				fix = append(fix, fsm.Event{Meta: fsm.Meta{Index: upTo}, Body: fsm.Checkpointed{
					Partition: id, Worker: p.Owner, Epoch: p.Epoch, Seq: p.ResumeAfter}})
			}
		}
	}
	if err := base.Fold(fix...); err != nil {
		return fmt.Errorf("%w: clamp checkpoints: %w", ErrCorrupt, err)
	}
	return nil
}

// loadBase decodes the current base state, which must be at the base index.
func (w *writer) loadBase() (*fsm.State, error) {
	b := w.baseBytes
	if b == nil {
		b = w.bs.info.Get(infoBase)
	}
	s, err := fsm.ReadSnapshot(bytes.NewReader(b), w.l.cfg.FSM)
	if err != nil {
		return nil, fmt.Errorf("%w: base state: %w", ErrCorrupt, err)
	}
	if s.AppliedIndex() != w.base {
		return nil, fmt.Errorf("%w: base state at index %d, base index %d", ErrCorrupt, s.AppliedIndex(), w.base)
	}
	return s, nil
}

// oldRefs returns the reference records of the partitions and workers evs
// concern, as base (before folding evs) has them: the only ones a trim can
// make obsolete. Sorted and without duplicates.
func (w *writer) oldRefs(base *fsm.State, evs []fsm.Event) ([][]byte, error) {
	type ref struct {
		bucket, prefix []byte
		idx            fsm.RaftIndex
	}
	var want []ref
	seenP, seenW := map[fsm.PartitionID]bool{}, map[fsm.WorkerID]bool{}
	for _, ev := range evs {
		for _, p := range ev.Partitions() {
			if seenP[p] {
				continue
			}
			seenP[p] = true
			pv, ok := base.PartitionView(p)
			if !ok {
				continue
			}
			want = append(want, ref{bPartition, partitionPrefix(p), pv.DeclaredIndex},
				ref{bPartition, partitionPrefix(p), pv.OwnerIndex})
			if h := pv.PendingHandoff; h != nil {
				want = append(want, ref{bPartition, partitionPrefix(p), h.PreparedIndex})
			}
		}
		for _, id := range ev.Workers() {
			if seenW[id] {
				continue
			}
			seenW[id] = true
			if wk, ok := base.Worker(id); ok {
				want = append(want, ref{bWorker, workerPrefix(id), fsm.RaftIndex(wk.Incarnation)})
			}
		}
	}
	var out [][]byte
	for _, r := range want {
		if r.idx == 0 || r.idx > w.base {
			continue
		}
		keys, err := entriesAt(w.bs.byName(r.bucket), r.prefix, r.idx)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if w.bs.refs.Get(k) != nil {
				out = append(out, k)
			}
		}
	}
	slices.SortFunc(out, bytes.Compare)
	return slices.CompactFunc(out, bytes.Equal), nil
}

// entriesAt returns the event keys at raft index idx in an index bucket under
// prefix.
func entriesAt(b *bbolt.Bucket, prefix []byte, idx fsm.RaftIndex) ([][]byte, error) {
	lo := append(bytes.Clone(prefix), evKey(idx, 0)...)
	hi := append(bytes.Clone(prefix), maxKey(idx)...)
	var out [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(lo); k != nil && bytes.Compare(k, hi) <= 0; k, _ = c.Next() {
		if len(k) == len(prefix)+keyLen {
			out = append(out, bytes.Clone(k[len(prefix):]))
		}
	}
	return out, nil
}

// isRef reports whether ev explains part of base: it set a partition's
// declaration, current owner or pending handoff, or a worker's incarnation.
func isRef(base *fsm.State, ev fsm.Event) bool {
	owner := func(p fsm.PartitionID) bool {
		pv, ok := base.PartitionView(p)
		return ok && pv.OwnerIndex == ev.Index
	}
	switch b := ev.Body.(type) {
	case fsm.PartitionsDeclared:
		for _, spec := range b.Partitions {
			if pv, ok := base.PartitionView(spec.ID); ok && pv.DeclaredIndex == ev.Index {
				return true
			}
		}
	case fsm.Claimed:
		return owner(b.Partition)
	case fsm.Committed:
		return owner(b.Partition)
	case fsm.Prepared:
		pv, ok := base.PartitionView(b.Partition)
		return ok && pv.PendingHandoff != nil && pv.PendingHandoff.ID == b.Handoff &&
			pv.PendingHandoff.PreparedIndex == ev.Index
	case fsm.WorkerJoined:
		wk, ok := base.Worker(b.Worker)
		return ok && wk.Incarnation == b.Incarnation && fsm.RaftIndex(b.Incarnation) == ev.Index
	}
	return false
}

// decodeStored decodes a stored event, reporting corruption with its key: a
// key that is not an event key, a value that does not decode, or an event
// that is not the one its key names.
func decodeStored(key, v []byte) (fsm.Event, error) {
	idx, seq, err := parseKey(key)
	if err != nil {
		return fsm.Event{}, err
	}
	ev, err := fsm.DecodeEvent(v)
	if err != nil {
		return fsm.Event{}, fmt.Errorf("%w: event %x: %w", ErrCorrupt, key, err)
	}
	if ev.Index != idx || ev.Seq != seq {
		return fsm.Event{}, fmt.Errorf("%w: event %d.%d stored under key %x", ErrCorrupt, ev.Index, ev.Seq, key)
	}
	return ev, nil
}

// decodeCheckpoint decodes a checkpoint record's event: a stored event
// (decodeStored) that must be a Checkpointed.
func decodeCheckpoint(key, v []byte) (fsm.Event, error) {
	ev, err := decodeStored(key, v)
	if err != nil {
		return fsm.Event{}, err
	}
	if _, ok := ev.Body.(fsm.Checkpointed); !ok {
		return fsm.Event{}, fmt.Errorf("%w: checkpoint record %x holds a %s event", ErrCorrupt, key, ev.Type())
	}
	return ev, nil
}

// Replay returns the state the log describes: the base state with every event
// above the base index folded in. Invariant 5 says it has the live state's
// content (compare with fsm.SameContent). It reads in one transaction, so it is
// consistent but holds bbolt's remap lock for its duration: a tool for tests
// and operators, not for a hot path. It returns ErrCorrupt if the stored
// history does not fold, and ErrClosed after Close.
func (l *Log) Replay() (*fsm.State, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	var s *fsm.State
	err := l.db.View(func(tx *bbolt.Tx) error {
		bs, _, err := openCurrent(tx)
		if err != nil {
			return err
		}
		base, err := getU64(bs.info, infoIndex)
		if err != nil {
			return err
		}
		w := &writer{l: l, bs: bs, base: fsm.RaftIndex(base)}
		if s, err = w.loadBase(); err != nil {
			return err
		}
		if w.base == math.MaxUint64 {
			return nil // nothing can be above it
		}
		m := allEvents(w.bs)
		for k, v := m.Seek(evKey(w.base+1, 0)); k != nil; k, v = m.Next() {
			ev, err := decodeAt(m, k, v)
			if err != nil {
				return err
			}
			if err := s.Fold(ev.Event); err != nil {
				return fmt.Errorf("%w: replay: %w", ErrCorrupt, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, l.translate(err)
	}
	return s, nil
}
