package core_test

import (
	"cmp"
	"slices"
	"strings"

	"github.com/batonhq/baton/consumer/internal/core"
	"github.com/batonhq/baton/fsm"
)

// A model of the parts of JetStream the core depends on (docs/jetstream-facts.md):
// one stream with a retention policy, and durable pull consumers with a
// filter, a cursor and ack-pending messages.
//
//   - A consumer delivers, fresh and in stream order, the stored messages at
//     or after its cursor that its filter covers; adding a subject does not
//     rewind the cursor (fact 1).
//   - Delivered, unacked messages stay pending and may be delivered again at
//     any time, also after their subject left the filter (facts 4, 5).
//   - Interest: a message nobody's filter covers when it is published is not
//     stored; a message no consumer needs an ack for is deleted at once, at an
//     ack, a filter change or a consumer's deletion (fact 10).
//   - WorkQueue: an ack or DeleteMsg removes the message; filters of two
//     consumers may not overlap (error 10100).
//   - A created consumer starts at the stream's end (Limits, Interest) or
//     delivers all (WorkQueue), as the applier creates them.

type jsMsg struct {
	seq     fsm.StreamSeq
	subject string
	part    fsm.PartitionID
	stored  bool // stored when published (Interest: someone covered it)
	deleted bool
}

type consKey struct {
	worker fsm.WorkerID
	inc    fsm.Incarnation
}

type jsConsumer struct {
	filter  []string
	cursor  fsm.StreamSeq // the next sequence to deliver fresh
	pending map[fsm.StreamSeq]bool
	paused  bool
}

type jetStream struct {
	retention core.Retention
	msgs      []*jsMsg // msgs[i].seq == i+1
	consumers map[consKey]*jsConsumer
	// deleted is told of every stored message the stream deletes.
	deleted func(m *jsMsg, why string)
}

func newJetStream(r core.Retention) *jetStream {
	return &jetStream{retention: r, consumers: map[consKey]*jsConsumer{}}
}

func subjectMatch(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}

func covers(filter []string, subject string) bool {
	for _, f := range filter {
		if subjectMatch(f, subject) {
			return true
		}
	}
	return false
}

func (js *jetStream) lastSeq() fsm.StreamSeq { return fsm.StreamSeq(len(js.msgs)) }

func (js *jetStream) msg(seq fsm.StreamSeq) *jsMsg {
	if seq == 0 || int(seq) > len(js.msgs) {
		return nil
	}
	return js.msgs[seq-1]
}

func (js *jetStream) sortedKeys() []consKey {
	keys := make([]consKey, 0, len(js.consumers))
	for k := range js.consumers {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b consKey) int {
		if c := strings.Compare(string(a.worker), string(b.worker)); c != 0 {
			return c
		}
		return cmp.Compare(a.inc, b.inc)
	})
	return keys
}

// publish appends a message; it reports whether it was stored.
func (js *jetStream) publish(subject string, p fsm.PartitionID) *jsMsg {
	m := &jsMsg{seq: js.lastSeq() + 1, subject: subject, part: p, stored: true}
	if js.retention == core.Interest {
		m.stored = false
		for _, c := range js.consumers {
			if covers(c.filter, subject) {
				m.stored = true
			}
		}
	}
	m.deleted = !m.stored
	js.msgs = append(js.msgs, m)
	return m
}

// needAck is nats-server's consumer.needAck for an explicit-ack consumer.
func (c *jsConsumer) needAck(m *jsMsg) bool {
	return covers(c.filter, m.subject) && (m.seq >= c.cursor || c.pending[m.seq])
}

// gcInterest deletes what no consumer needs (Interest only).
func (js *jetStream) gcInterest() {
	if js.retention != core.Interest {
		return
	}
	for _, m := range js.msgs {
		if m.deleted {
			continue
		}
		needed := false
		for _, c := range js.consumers {
			if c.needAck(m) {
				needed = true
				break
			}
		}
		if !needed {
			m.deleted = true
			js.deleted(m, "no consumer needs it (interest)")
		}
	}
}

func (js *jetStream) delete(seq fsm.StreamSeq, why string) {
	m := js.msg(seq)
	if m == nil || m.deleted {
		return
	}
	m.deleted = true
	js.deleted(m, why)
	for _, c := range js.consumers {
		delete(c.pending, seq)
	}
}

// ack acknowledges seq on consumer k.
func (js *jetStream) ack(k consKey, seq fsm.StreamSeq) {
	c := js.consumers[k]
	if c == nil || !c.pending[seq] {
		return
	}
	delete(c.pending, seq)
	switch js.retention {
	case core.WorkQueue:
		js.delete(seq, "acked on a workqueue stream")
	case core.Interest:
		js.gcInterest()
	}
}

// next returns up to n fresh deliveries of consumer k, moving its cursor.
func (js *jetStream) next(k consKey, n int) []*jsMsg {
	c := js.consumers[k]
	if c == nil || c.paused {
		return nil
	}
	var out []*jsMsg
	for len(out) < n && c.cursor <= js.lastSeq() {
		m := js.msg(c.cursor)
		c.cursor++
		if m.deleted || !covers(c.filter, m.subject) {
			continue
		}
		c.pending[m.seq] = true
		out = append(out, m)
	}
	return out
}

func (js *jetStream) hasNext(k consKey) bool {
	c := js.consumers[k]
	if c == nil || c.paused {
		return false
	}
	for s := c.cursor; s <= js.lastSeq(); s++ {
		if m := js.msg(s); !m.deleted && covers(c.filter, m.subject) {
			return true
		}
	}
	return false
}

// pendingSeqs lists what consumer k may deliver again.
func (js *jetStream) pendingSeqs(k consKey) []fsm.StreamSeq {
	c := js.consumers[k]
	if c == nil {
		return nil
	}
	var out []fsm.StreamSeq
	for s := range c.pending {
		if m := js.msg(s); m != nil && !m.deleted {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// overlaps reports whether another consumer's filter shares a subject with
// subjects (the model's partitions use disjoint "<token>.>" subjects, so
// equality is overlap).
func (js *jetStream) overlaps(k consKey, subjects []string) bool {
	for ok, c := range js.consumers {
		if ok == k {
			continue
		}
		for _, s := range subjects {
			if slices.Contains(c.filter, s) {
				return true
			}
		}
	}
	return false
}

// setFilter makes consumer k filter exactly subjects, creating it if needed;
// an empty list pauses it (Limits) or deletes it (WorkQueue, Interest), as
// the applier does. It reports whether it created the consumer.
func (js *jetStream) setFilter(k consKey, subjects []string) (created bool, err error) {
	c := js.consumers[k]
	if len(subjects) == 0 {
		if c != nil {
			if js.retention == core.Limits {
				c.paused = true
			} else {
				delete(js.consumers, k)
				js.gcInterest()
			}
		}
		return false, nil
	}
	if js.retention == core.WorkQueue && js.overlaps(k, subjects) {
		return false, errOverlap
	}
	if c == nil {
		c = &jsConsumer{pending: map[fsm.StreamSeq]bool{}, cursor: js.lastSeq() + 1}
		if js.retention == core.WorkQueue {
			c.cursor = 1
		}
		js.consumers[k] = c
		created = true
	}
	c.filter, c.paused = slices.Clone(subjects), false
	js.gcInterest()
	return created, nil
}

// removeSubjects takes subjects out of consumer k's filter, deleting it when
// none remain (a next owner cleaning a gone owner's consumer).
func (js *jetStream) removeSubjects(k consKey, subjects []string) {
	c := js.consumers[k]
	if c == nil {
		return
	}
	c.filter = slices.DeleteFunc(c.filter, func(s string) bool { return slices.Contains(subjects, s) })
	if len(c.filter) == 0 {
		delete(js.consumers, k)
	}
	js.gcInterest()
}

// read answers a catch-up read: the stored messages of subjects after
// after, in stream order, at most limit.
func (js *jetStream) read(subjects []string, after fsm.StreamSeq, limit int) []*jsMsg {
	var out []*jsMsg
	for s := after + 1; s <= js.lastSeq() && len(out) < limit; s++ {
		if m := js.msg(s); !m.deleted && covers(subjects, m.subject) {
			out = append(out, m)
		}
	}
	return out
}
