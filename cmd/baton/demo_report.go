package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/delivery"
)

// finish stops the producer, waits until everything was handled, and reports.
func (d *demo) finish(ctx context.Context) error {
	d.prod.halt()
	published := d.prod.snapshot()
	d.step("producer stopped after %d messages; waiting until every message is handled", d.prod.count())
	waitErr := d.waitFor(ctx, 30*time.Second, "every published message handled", func(context.Context) error {
		if n := d.rec.missing(published); n > 0 {
			return fmt.Errorf("%d messages not handled yet", n)
		}
		return nil
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	d.stopFollow()

	evs, err := d.auditEvents(ctx, timelineTypes...)
	if err != nil {
		return err
	}
	forced := delivery.ForcedCommits(evs)
	handled, byWorker := d.rec.snapshot()
	rep := delivery.Check(published, handled, forced)

	tb := newTimelineBuilder()
	for _, ev := range evs {
		tb.add(ev)
	}
	var p2d, d2c, c2a, p2a []float64
	for _, h := range tb.timelines() {
		if h.Handoff != 0 && !h.Forced && h.Activated != 0 {
			p2d, d2c, c2a = append(p2d, h.PrepareToDrainMS), append(d2c, h.DrainToCommitMS), append(c2a, h.CommitToActivateMS)
			p2a = append(p2a, h.PrepareToDrainMS+h.DrainToCommitMS+h.CommitToActivateMS)
		}
	}
	d.step("done: %d graceful handoffs, %d forced commits after the crash", len(p2d), len(forced))
	if len(p2d) > 0 {
		fmt.Fprintf(d.out, "graceful handoffs: prepare→active median %s, p99 %s; phases (median): prepare→drain %s, drain→commit %s, commit→activate %s (per handoff: baton audit --timeline)\n",
			pctMS(p2a, 50), pctMS(p2a, 99), pctMS(p2d, 50), pctMS(d2c, 50), pctMS(c2a, 50))
	}
	var per []string
	for _, w := range sortedKeys(byWorker) {
		per = append(per, fmt.Sprintf("%s=%d", w, byWorker[w]))
	}
	fmt.Fprintf(d.out, "handled per worker: %s\n", strings.Join(per, " "))
	if n := d.prod.errors.Load(); n > 0 {
		fmt.Fprintf(d.out, "publish retries: %d\n", n)
	}
	for _, p := range rep.Problems() {
		fmt.Fprintf(d.out, "problem: %s\n", p)
	}
	if waitErr != nil {
		fmt.Fprintf(d.out, "problem: %v\n", waitErr)
	}
	fmt.Fprintf(d.out, "crash_duplicates=%d (within the checkpoint window)\n", rep.CrashDuplicates)
	fmt.Fprintln(d.out, rep.String())
	if !rep.OK() || waitErr != nil {
		return &exitError{code: 1}
	}
	return nil
}

// pctMS is the p-th percentile (nearest rank) of v, in milliseconds, as a
// duration rounded to 0.1 ms.
func pctMS(v []float64, p int) string {
	slices.Sort(v)
	i := min(len(v)-1, max(0, (len(v)*p+99)/100-1))
	return (time.Duration(v[i] * float64(time.Millisecond))).Round(100 * time.Microsecond).String()
}

func (d *demo) auditEvents(ctx context.Context, types ...fsm.EventType) ([]fsm.Event, error) {
	var out []fsm.Event
	for ev, err := range d.cl.AuditAll(ctx, client.AuditQuery{Types: types, Limit: 1000}) {
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		out = append(out, ev.Event)
	}
	return out, nil
}

// startFollow prints handoff events as the audit log records them.
func (d *demo) startFollow() {
	ctx, cancel := context.WithCancel(context.Background())
	d.follow = cancel
	st, err := d.cl.Status(ctx)
	from := fsm.RaftIndex(1)
	if err == nil {
		from = fsm.RaftIndex(st.AuditLast + 1)
	}
	q := client.AuditQuery{From: from, Types: []fsm.EventType{
		fsm.EvPrepared, fsm.EvDrained, fsm.EvCommitted, fsm.EvActivated, fsm.EvAborted, fsm.EvWorkerLeft}}
	d.followW.Add(1)
	go func() {
		defer d.followW.Done()
		for ev, err := range d.cl.FollowAudit(ctx, q, "") {
			if err != nil {
				if ctx.Err() == nil {
					d.say("  audit follow ended: %v", err)
				}
				return
			}
			d.say("    %s", compactEvent(ev.Event))
		}
	}()
}

func (d *demo) stopFollow() {
	if d.follow != nil {
		d.follow()
		d.followW.Wait()
		d.follow = nil
	}
}

// compactEvent renders a handoff event for the demo's narration.
func compactEvent(ev fsm.Event) string {
	switch e := ev.Body.(type) {
	case fsm.Prepared:
		to := string(e.To)
		if to == "" {
			to = "(release)"
		}
		return fmt.Sprintf("#%-5d Prepared   %s %s %s→%s  reason=%s", ev.Index, e.Handoff, e.Partition, e.From, to, e.Reason)
	case fsm.Drained:
		return fmt.Sprintf("#%-5d Drained    %s %s by %s through seq %d", ev.Index, e.Handoff, e.Partition, e.From, e.ThroughSeq)
	case fsm.Committed:
		if e.Forced {
			return fmt.Sprintf("#%-5d Committed  %s → %s epoch %d FORCED (%s): resumes after checkpoint %d", ev.Index, e.Partition, e.To, e.Epoch, e.ForceReason, e.ResumeAfter)
		}
		return fmt.Sprintf("#%-5d Committed  %s %s → %s epoch %d, resumes after seq %d", ev.Index, e.Handoff, e.Partition, e.To, e.Epoch, e.ResumeAfter)
	case fsm.Activated:
		return fmt.Sprintf("#%-5d Activated  %s on %s epoch %d", ev.Index, e.Partition, e.Worker, e.Epoch)
	case fsm.Aborted:
		return fmt.Sprintf("#%-5d Aborted    %s %s %s→%s: %s", ev.Index, e.Handoff, e.Partition, e.From, e.To, e.Reason)
	case fsm.WorkerLeft:
		return fmt.Sprintf("#%-5d WorkerLeft %s (%s)", ev.Index, e.Worker, e.Reason)
	}
	return fmt.Sprintf("#%-5d %s", ev.Index, ev.String())
}
