package consumer

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/fsm"
)

// The catch-up read. Adding a subject to a consumer's filter does not rewind it
// (docs/jetstream-facts.md, fact 1): messages of a newly owned partition that lie
// behind the consumer's cursor would never be delivered. So after the filter
// covers the partition, a reader walks the stream from the resume point, a
// batch of next-by-subject reads at a time (fact 11; storeread.go), in sequence
// order, until it either runs out of messages or reaches the first one the
// consumer delivered; from then on the consumer has everything. A message
// published after the read found nothing is above the cursor the consumer had
// when its filter changed, so the consumer delivers it. "Found nothing" is the
// stream leader's answer, never a possibly lagging replica's.

func (d *dispatcher) startReader(ctx context.Context, p *part, after fsm.StreamSeq) {
	if p.cancelReader != nil {
		p.cancelReader()
	}
	rctx, cancel := context.WithCancel(ctx)
	p.cancelReader = cancel
	credits := make(chan struct{}, d.a.opts.catchupWindow)
	r := &reader{
		store: d.a.store, part: p.id, gen: p.gen, subjects: p.subjects,
		after: after, credits: credits, out: d.catchups, a: d.a,
	}
	d.a.wg.Add(1)
	go func() {
		defer d.a.wg.Done()
		r.run(rctx)
	}()
}

type reader struct {
	a        *Applier
	store    *storeReader
	part     fsm.PartitionID
	gen      uint64
	subjects []string
	after    fsm.StreamSeq
	credits  chan struct{}
	out      chan<- catchupMsg
}

// head holds the read-ahead of one subject: the messages read and not yet
// sent, and where the next read starts. Unless done, buf is not empty.
type head struct {
	subject string
	buf     []*jetstream.RawStreamMsg
	next    uint64
	done    bool
}

func (r *reader) run(ctx context.Context) {
	heads := make([]head, len(r.subjects))
	for i, s := range r.subjects {
		heads[i] = head{subject: s, next: uint64(r.after) + 1}
		if err := r.fill(ctx, &heads[i]); err != nil {
			r.send(ctx, catchupMsg{part: r.part, gen: r.gen, err: err})
			return
		}
	}
	for {
		// The smallest head across the partition's subjects is next.
		best := -1
		for i, h := range heads {
			if !h.done && (best < 0 || h.buf[0].Sequence < heads[best].buf[0].Sequence) {
				best = i
			}
		}
		if best < 0 {
			r.send(ctx, catchupMsg{part: r.part, gen: r.gen, eof: true})
			return
		}
		h := &heads[best]
		m := h.buf[0]
		h.buf[0] = nil
		h.buf = h.buf[1:]
		select {
		case r.credits <- struct{}{}:
		case <-ctx.Done():
			return
		}
		dl := &delivery{seq: fsm.StreamSeq(m.Sequence), subject: m.Subject, header: m.Header, data: m.Data, time: m.Time, credit: r.credits}
		r.a.metrics.catchupReads.Inc()
		if !r.send(ctx, catchupMsg{part: r.part, gen: r.gen, d: dl}) {
			return
		}
		if len(h.buf) == 0 {
			if err := r.fill(ctx, h); err != nil {
				r.send(ctx, catchupMsg{part: r.part, gen: r.gen, err: err})
				return
			}
		}
	}
}

// fill reads the next batch of h's subject, retrying transient errors; it
// marks h done when the stream holds no more of it.
func (r *reader) fill(ctx context.Context, h *head) error {
	b := newBackoff(20*time.Millisecond, r.a.opts.controlBackoffMax)
	for attempt := 0; ; attempt++ {
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		msgs, err := r.store.next(gctx, h.subject, h.next)
		cancel()
		switch {
		case err == nil && len(msgs) == 0:
			h.buf, h.done = nil, true
			return nil
		case err == nil:
			h.buf, h.next = msgs, msgs[len(msgs)-1].Sequence+1
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		c := classify(err)
		if c == terminal || attempt >= 8 {
			return err
		}
		if !b.wait(ctx, c) {
			return ctx.Err()
		}
	}
}

func (r *reader) send(ctx context.Context, m catchupMsg) bool {
	select {
	case r.out <- m:
		return true
	case <-ctx.Done():
		return false
	}
}
