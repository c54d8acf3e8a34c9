package fsm

import (
	"bytes"
	"fmt"
)

// Fold applies events read back from an audit log to the state, in order. The
// applied index and term advance to the last event's. Events that do not fit the
// state (a gap or corruption in the log) yield an error; the state may then be
// partly changed, so callers fold into a copy they can throw away.
func (s *State) Fold(events ...Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("fsm: fold: %v", r)
		}
	}()
	for _, ev := range events {
		if ev.Body == nil {
			return fmt.Errorf("fsm: fold: event at index %d has no body", ev.Index)
		}
		s.fold(ev)
		if ev.Index > s.applied {
			s.applied, s.term = ev.Index, ev.Term
		}
	}
	return nil
}

// Replay folds events into an empty state: the audit trail's view of the world
// (invariant 5 says it equals the live state's content).
func Replay(cfg Config, events []Event) (*State, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.Fold(events...); err != nil {
		return nil, err
	}
	return s, nil
}

// contentBytes is the canonical encoding of what events determine: workers,
// partitions, handoffs, the handoff allocator and the pause flag. It leaves out
// the applied index, term and request table, which commands without events also
// change.
func (s *State) contentBytes() []byte {
	c := *s
	c.applied, c.term, c.requests = 0, 0, newRequestTable()
	var buf bytes.Buffer
	if err := c.WriteSnapshot(&buf); err != nil {
		panic(err) // writing to memory cannot fail
	}
	return buf.Bytes()
}

// SameContent reports nil if a and b hold the same workers, partitions, handoffs
// and settings, and otherwise an error naming the first difference.
func SameContent(a, b *State) error {
	if bytes.Equal(a.contentBytes(), b.contentBytes()) {
		return nil
	}
	for _, w := range a.Workers() {
		if o, ok := b.Worker(w.ID); !ok || fmt.Sprint(o) != fmt.Sprint(w) {
			return fmt.Errorf("fsm: worker %s differs: %+v vs %+v", w.ID, w, o)
		}
	}
	if len(a.workers) != len(b.workers) {
		return fmt.Errorf("fsm: %d workers vs %d", len(a.workers), len(b.workers))
	}
	for _, p := range a.Partitions("", 0) {
		o, ok := b.PartitionView(p.ID)
		if !ok || fmt.Sprint(o.Partition) != fmt.Sprint(p.Partition) {
			return fmt.Errorf("fsm: partition %s differs: %+v vs %+v", p.ID, p.Partition, o.Partition)
		}
	}
	if len(a.partitions) != len(b.partitions) {
		return fmt.Errorf("fsm: %d partitions vs %d", len(a.partitions), len(b.partitions))
	}
	return fmt.Errorf("fsm: handoffs or settings differ: %v/%v/%v vs %v/%v/%v",
		a.Handoffs(), a.lastHandoff, a.paused, b.Handoffs(), b.lastHandoff, b.paused)
}
