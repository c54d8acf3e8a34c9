package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/fsm"
)

// handoffTimeline is one handoff's phases as the audit log tells them. Times
// are leader times in Unix nanoseconds, 0 when the phase is not (yet) in the
// log.
type handoffTimeline struct {
	Handoff   fsm.HandoffID   `json:"handoff,omitempty"`
	Partition fsm.PartitionID `json:"partition"`
	From      fsm.WorkerID    `json:"from,omitempty"`
	To        fsm.WorkerID    `json:"to,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	// Index is the raft index of the first event seen, for ordering.
	Index       fsm.RaftIndex `json:"index"`
	Prepared    int64         `json:"prepared_time,omitempty"`
	Drained     int64         `json:"drained_time,omitempty"`
	ThroughSeq  fsm.StreamSeq `json:"through_seq,omitempty"`
	Committed   int64         `json:"committed_time,omitempty"`
	CommitIndex fsm.RaftIndex `json:"commit_index,omitempty"`
	Epoch       fsm.Epoch     `json:"epoch,omitempty"` // the new owner's, from the commit
	ResumeAfter fsm.StreamSeq `json:"resume_after,omitempty"`
	Forced      bool          `json:"forced,omitempty"`
	ForceReason string        `json:"force_reason,omitempty"`
	Activated   int64         `json:"activated_time,omitempty"`
	Aborted     int64         `json:"aborted_time,omitempty"`
	AbortReason string        `json:"abort_reason,omitempty"`
	// Durations in milliseconds (-1: not known), for --json.
	PrepareToDrainMS    float64 `json:"prepare_to_drain_ms"`
	DrainToCommitMS     float64 `json:"drain_to_commit_ms"`
	CommitToActivateMS  float64 `json:"commit_to_activate_ms"`
	PrepareToActivateMS float64 `json:"total_ms"`
}

type activationKey struct {
	p fsm.PartitionID
	e fsm.Epoch
}

// timelineBuilder folds handoff events into timelines.
type timelineBuilder struct {
	byID      map[fsm.HandoffID]*handoffTimeline
	forced    []*handoffTimeline // forced commits that belong to no handoff
	activated map[activationKey]int64
}

func newTimelineBuilder() *timelineBuilder {
	return &timelineBuilder{byID: map[fsm.HandoffID]*handoffTimeline{}, activated: map[activationKey]int64{}}
}

// timelineTypes are the events a timeline needs.
var timelineTypes = []fsm.EventType{fsm.EvPrepared, fsm.EvDrained, fsm.EvCommitted, fsm.EvActivated, fsm.EvAborted}

func (b *timelineBuilder) entry(id fsm.HandoffID, p fsm.PartitionID, idx fsm.RaftIndex) *handoffTimeline {
	h := b.byID[id]
	if h == nil {
		h = &handoffTimeline{Handoff: id, Partition: p, Index: idx}
		b.byID[id] = h
	}
	return h
}

func (b *timelineBuilder) add(ev fsm.Event) {
	switch e := ev.Body.(type) {
	case fsm.Prepared:
		h := b.entry(e.Handoff, e.Partition, ev.Index)
		h.From, h.To, h.Reason, h.Prepared = e.From, e.To, e.Reason, ev.Time
	case fsm.Drained:
		h := b.entry(e.Handoff, e.Partition, ev.Index)
		h.From, h.Drained, h.ThroughSeq = e.From, ev.Time, e.ThroughSeq
	case fsm.Committed:
		var h *handoffTimeline
		if e.Handoff == 0 {
			h = &handoffTimeline{Partition: e.Partition, Index: ev.Index}
			b.forced = append(b.forced, h)
		} else {
			h = b.entry(e.Handoff, e.Partition, ev.Index)
		}
		h.From, h.To = e.From, e.To
		h.Committed, h.CommitIndex, h.Epoch, h.ResumeAfter = ev.Time, ev.Index, e.Epoch, e.ResumeAfter
		h.Forced = e.Forced
		if e.Forced {
			h.ForceReason = e.ForceReason.String()
		}
	case fsm.Aborted:
		h := b.entry(e.Handoff, e.Partition, ev.Index)
		h.From, h.To, h.Aborted, h.AbortReason = e.From, e.To, ev.Time, e.Reason
	case fsm.Activated:
		b.activated[activationKey{e.Partition, e.Epoch}] = ev.Time
	}
}

// timelines returns every handoff in log order, with activations matched.
func (b *timelineBuilder) timelines() []*handoffTimeline {
	out := append([]*handoffTimeline(nil), b.forced...)
	for _, h := range b.byID {
		out = append(out, h)
	}
	for _, h := range out {
		if h.Committed != 0 {
			h.Activated = b.activated[activationKey{h.Partition, h.Epoch}]
		}
		h.PrepareToDrainMS = spanMS(h.Prepared, h.Drained)
		h.DrainToCommitMS = spanMS(h.Drained, h.Committed)
		h.CommitToActivateMS = spanMS(h.Committed, h.Activated)
		h.PrepareToActivateMS = spanMS(h.Prepared, h.Activated)
	}
	slices.SortFunc(out, func(a, b *handoffTimeline) int {
		if c := cmp.Compare(a.Index, b.Index); c != 0 {
			return c
		}
		return cmp.Compare(a.Handoff, b.Handoff)
	})
	return out
}

func spanMS(from, to int64) float64 {
	if from == 0 || to == 0 {
		return -1
	}
	return float64(to-from) / 1e6
}

func span(from, to int64) string {
	if from == 0 || to == 0 {
		return "-"
	}
	d := time.Duration(to - from)
	switch {
	case d >= 10*time.Second:
		d = d.Round(100 * time.Millisecond)
	case d >= time.Millisecond:
		d = d.Round(100 * time.Microsecond)
	}
	return d.String()
}

// result says how a handoff ended, or where it stands.
func (h *handoffTimeline) result() string {
	switch {
	case h.Aborted != 0:
		return "ABORTED: " + dash(h.AbortReason)
	case h.Forced:
		return fmt.Sprintf("FORCED (%s) from checkpoint %d", h.ForceReason, h.ResumeAfter)
	case h.Activated != 0:
		return "ok"
	case h.Committed != 0:
		return "committed, not activated yet"
	case h.Drained != 0:
		return "drained, not committed yet"
	case h.Prepared != 0:
		return "preparing"
	}
	return "?"
}

func printTimeline(ctx context.Context, c clientFlags, cl *client.Client, q client.AuditQuery, limit int) error {
	if len(q.Types) == 0 {
		q.Types = timelineTypes
	}
	b := newTimelineBuilder()
	n := 0
	for ev, err := range cl.AuditAll(ctx, q) {
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		b.add(ev.Event)
		n++
		if limit > 0 && n >= limit {
			break
		}
	}
	tls := b.timelines()
	// Activations the query did not return (a --handoff filter, a limit):
	// look each up by partition, after the commit.
	for _, h := range tls {
		if h.Committed == 0 || b.activated[activationKey{h.Partition, h.Epoch}] != 0 {
			continue
		}
		aq := client.AuditQuery{Partition: h.Partition, Types: []fsm.EventType{fsm.EvActivated}, From: h.CommitIndex, Limit: 50}
		for ev, err := range cl.AuditAll(ctx, aq) {
			if err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			if a, ok := ev.Body.(fsm.Activated); ok && a.Epoch >= h.Epoch {
				b.add(ev.Event)
				break
			}
		}
	}
	tls = b.timelines()
	if c.json {
		for _, h := range tls {
			if err := (&eventWriter{w: c.out, json: true}).writeJSON(h); err != nil {
				return err
			}
		}
		return nil
	}
	printTimelineTable(c, tls)
	return nil
}

// printTimelineTable prints the handoff timelines as a table.
func printTimelineTable(c clientFlags, tls []*handoffTimeline) {
	t := newTable(c.out, "STARTED", "HANDOFF", "PARTITION", "FROM→TO", "REASON", "PREPARE→DRAIN", "DRAIN→COMMIT", "COMMIT→ACTIVATE", "TOTAL", "RESULT")
	for _, h := range tls {
		start := h.Prepared
		if start == 0 {
			start = h.Committed
		}
		id := "-"
		if h.Handoff != 0 {
			id = h.Handoff.String()
		}
		to := dash(h.To)
		if h.To == "" && h.Prepared != 0 {
			to = "(release)"
		}
		reason := h.Reason
		if reason == "" {
			reason = h.ForceReason
		}
		t.row(time.Unix(0, start).Format("15:04:05.000"), id, h.Partition, fmt.Sprintf("%s→%s", dash(h.From), to), dash(reason),
			span(h.Prepared, h.Drained), span(h.Drained, h.Committed), span(h.Committed, h.Activated), span(h.Prepared, h.Activated), h.result())
	}
	t.flush()
	if len(tls) == 0 {
		fmt.Fprintln(c.out, "(no handoffs)")
	}
}
