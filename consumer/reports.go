package consumer

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/consumer/internal/core"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/retry"
)

// Executors of the core's I/O actions that answer it: reports to the claim
// store, the graceful leave, and catch-up reads. Each runs on its own
// goroutine and posts its outcome back to the loop; the core decides what a
// failure means (retry after a back-off, or give up on a refusal).

// reportAttempt bounds one report call: a report is one raft write, and the
// core sends it again after a failure rather than have it wait long here.
const reportAttempt = 5 * time.Second

func (a *Applier) reportDrained(ctx context.Context, r core.ReportDrained) {
	sendReport(ctx, a, r.Inc, core.KindDrained, r.Items, func(it fsm.DrainItem) (fsm.PartitionID, fsm.Epoch) { return it.Partition, it.Epoch },
		func(ctx context.Context) (api.WriteResponse, error) {
			return a.coord.Drained(ctx, a.worker, r.Inc, r.Items)
		})
}

func (a *Applier) reportActivated(ctx context.Context, r core.ReportActivated) {
	sendReport(ctx, a, r.Inc, core.KindActivated, r.Items, func(it fsm.ActivateItem) (fsm.PartitionID, fsm.Epoch) { return it.Partition, it.Epoch },
		func(ctx context.Context) (api.WriteResponse, error) {
			return a.coord.Activated(ctx, a.worker, r.Inc, r.Items)
		})
}

func (a *Applier) reportCheckpoints(ctx context.Context, r core.ReportCheckpoints) {
	sendReport(ctx, a, r.Inc, core.KindCheckpoints, r.Items, func(it fsm.CheckpointItem) (fsm.PartitionID, fsm.Epoch) { return it.Partition, it.Epoch },
		func(ctx context.Context) (api.WriteResponse, error) {
			res, err := a.coord.Checkpoints(ctx, a.worker, r.Inc, r.Items)
			if err == nil {
				a.metrics.checkpoints.Add(float64(len(r.Items)))
			} else {
				a.log.Debug("checkpoint", "err", err)
			}
			return res, err
		})
}

// sendReport makes one bounded report call for items and hands the outcome
// to the core, item by item (partition and epoch, as key gives them).
func sendReport[T any](ctx context.Context, a *Applier, inc fsm.Incarnation, kind core.ReportKind, items []T, key func(T) (fsm.PartitionID, fsm.Epoch), call func(context.Context) (api.WriteResponse, error)) {
	parts, epochs := make([]fsm.PartitionID, len(items)), make([]fsm.Epoch, len(items))
	for i, it := range items {
		parts[i], epochs[i] = key(it)
	}
	res, err := report(ctx, call)
	a.postReport(ctx, inc, kind, parts, epochs, res, err)
}

// report makes one bounded report call.
func report(ctx context.Context, f func(context.Context) (api.WriteResponse, error)) (api.WriteResponse, error) {
	cctx, cancel := context.WithTimeout(ctx, reportAttempt)
	defer cancel()
	return f(cctx)
}

// postReport hands a report's outcome to the core: per-item refusals (items
// answered with an error) are final; a
// failed request is final only when the error is terminal.
func (a *Applier) postReport(ctx context.Context, inc fsm.Incarnation, kind core.ReportKind, parts []fsm.PartitionID, epochs []fsm.Epoch, res api.WriteResponse, err error) {
	itemErrs := make([]error, len(parts))
	for i := range itemErrs {
		if i < len(res.Items) && res.Items[i] != nil {
			itemErrs[i] = res.Items[i]
		}
	}
	refused := err != nil && classify(err) == terminal
	if err != nil && !refused && ctx.Err() == nil {
		a.log.Debug("report failed; the core retries it", "kind", kind, "err", err)
	}
	a.post(ctx, func(c *core.Core, now time.Time) { c.ReportDone(now, inc, kind, parts, epochs, itemErrs, err, refused) })
}

// leave ends the session gracefully.
func (a *Applier) leave(ctx context.Context, inc fsm.Incarnation) {
	_, err := report(ctx, func(ctx context.Context) (api.WriteResponse, error) {
		return a.coord.Leave(ctx, a.worker, inc)
	})
	if err != nil && isUnknownSession(err) {
		err = nil // gone already: nothing to leave
	}
	if err != nil {
		a.log.Warn("leave", "err", err)
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return
		}
	}
	a.post(ctx, func(c *core.Core, now time.Time) { c.LeaveDone(now, inc, err) })
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// read runs one catch-up read: the stored messages of the partition's
// subjects after r.After, in stream order, at most r.Limit of them, merged
// across subjects. For each subject the next batch is read; the merge is cut
// at the smallest last sequence among subjects that returned messages (a
// subject may hold more beyond its batch), and the read is at its end when no
// subject returned anything — which is the stream leader's word (streamread.go).
func (a *Applier) read(ctx context.Context, r core.Read) {
	var out []*core.Delivery
	eof := true
	var bound uint64
	var err error
	for _, subj := range r.Subjects {
		var msgs []*jetstream.RawStreamMsg
		msgs, err = a.readSubject(ctx, subj, uint64(r.After)+1)
		if err != nil {
			break
		}
		if len(msgs) == 0 {
			continue
		}
		eof = false
		if last := msgs[len(msgs)-1].Sequence; bound == 0 || last < bound {
			bound = last
		}
		for _, m := range msgs {
			out = append(out, &core.Delivery{Seq: fsm.StreamSeq(m.Sequence), Subject: m.Subject, FromRead: true,
				Payload: &message{subject: m.Subject, header: m.Header, data: m.Data, time: m.Time}})
		}
	}
	if err != nil {
		out, eof = nil, false
	} else if !eof {
		out = cutSorted(out, fsm.StreamSeq(bound))
		a.metrics.catchupReads.Add(float64(len(out)))
	}
	if a.log.Enabled(ctx, slog.LevelDebug) {
		first, last := fsm.StreamSeq(0), fsm.StreamSeq(0)
		if len(out) > 0 {
			first, last = out[0].Seq, out[len(out)-1].Seq
		}
		a.log.Debug("catch-up read", "partition", r.Partition, "after", r.After, "n", len(out), "first", first, "last", last, "eof", eof, "err", err)
	}
	id, gen := r.Partition, r.Gen
	a.post(ctx, func(c *core.Core, now time.Time) { c.ReadDone(now, id, gen, out, eof, err) })
}

// readSubject reads the next batch of one subject, retrying transient errors
// a few times (readPolicy).
func (a *Applier) readSubject(ctx context.Context, subject string, from uint64) ([]*jetstream.RawStreamMsg, error) {
	var msgs []*jetstream.RawStreamMsg
	err := retry.Do(ctx, readPolicy(), func(ctx context.Context) error {
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var err error
		msgs, err = a.reader.next(gctx, subject, from)
		return err
	})
	return msgs, err
}

// cutSorted sorts ds by sequence and keeps those at or below bound.
func cutSorted(ds []*core.Delivery, bound fsm.StreamSeq) []*core.Delivery {
	slices.SortFunc(ds, func(a, b *core.Delivery) int { return cmp.Compare(a.Seq, b.Seq) })
	i, _ := slices.BinarySearchFunc(ds, bound+1, func(d *core.Delivery, s fsm.StreamSeq) int { return cmp.Compare(d.Seq, s) })
	return ds[:i]
}
