package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/fsm"
)

// The catch-up read. Adding a subject to a consumer's filter does not rewind it
// (docs/jetstream-facts.md, fact 1): messages of a newly owned partition that lie
// behind the consumer's cursor would never be delivered. So after the filter
// covers the partition, a reader walks the stream from the resume point with
// next-by-subject gets (fact 11), in sequence order, until it either runs out
// of messages or reaches the first one the consumer delivered; from then on the
// consumer has everything. A message published after the read found nothing is
// above the cursor the consumer had when its filter changed, so the consumer
// delivers it.

func (d *dispatcher) startReader(ctx context.Context, p *part, after fsm.StreamSeq) {
	if p.cancelReader != nil {
		p.cancelReader()
	}
	rctx, cancel := context.WithCancel(ctx)
	p.cancelReader = cancel
	credits := make(chan struct{}, d.a.opts.catchupWindow)
	r := &reader{
		stream: d.a.stream, part: p.id, gen: p.gen, subjects: p.subjects,
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
	stream   jetstream.Stream
	part     fsm.PartitionID
	gen      uint64
	subjects []string
	after    fsm.StreamSeq
	credits  chan struct{}
	out      chan<- catchupMsg
}

// head is the next stored message of one subject, or none.
type head struct {
	msg  *jetstream.RawStreamMsg
	done bool
}

func (r *reader) run(ctx context.Context) {
	heads := make([]head, len(r.subjects))
	for i := range heads {
		if err := r.fill(ctx, &heads[i], r.subjects[i], uint64(r.after)+1); err != nil {
			r.send(ctx, catchupMsg{part: r.part, gen: r.gen, err: err})
			return
		}
	}
	for {
		// The smallest head across the partition's subjects is next.
		best := -1
		for i, h := range heads {
			if !h.done && (best < 0 || h.msg.Sequence < heads[best].msg.Sequence) {
				best = i
			}
		}
		if best < 0 {
			r.send(ctx, catchupMsg{part: r.part, gen: r.gen, eof: true})
			return
		}
		m := heads[best].msg
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
		if err := r.fill(ctx, &heads[best], r.subjects[best], m.Sequence+1); err != nil {
			r.send(ctx, catchupMsg{part: r.part, gen: r.gen, err: err})
			return
		}
	}
}

// fill reads the first message of subject at or after seq into h, retrying
// transient errors.
func (r *reader) fill(ctx context.Context, h *head, subject string, seq uint64) error {
	b := newBackoff(20*time.Millisecond, r.a.opts.controlBackoffMax)
	for attempt := 0; ; attempt++ {
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := r.stream.GetMsg(gctx, seq, jetstream.WithGetMsgSubject(subject))
		cancel()
		switch {
		case err == nil:
			h.msg, h.done = m, false
			return nil
		case errors.Is(err, jetstream.ErrMsgNotFound):
			h.msg, h.done = nil, true
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
