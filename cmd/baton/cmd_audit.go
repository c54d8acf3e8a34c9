package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/fsm"
)

const auditHelp = `
Queries the audit log: every ownership change is an event with its raft index,
leader time, actor and cause. Filters combine (all must match).

Output: one event per line (time, index.seq, type, details), or JSON lines with
--json. --follow streams new events as they are appended (Ctrl-C to stop);
without --from or --since it starts at the current end of the log.

--timeline groups handoff events by handoff id and prints, per handoff, the
partition, from→to, reason, and how long each phase took in leader time:
prepare→drain, drain→commit, and commit→activate (the activation is found by
partition and epoch). Forced commits and aborted handoffs are marked.

Times for --since/--until are RFC 3339 (2025-01-31T12:00:00Z) or a duration
meaning that long ago (10m: ten minutes ago).

Examples:
  baton audit --partition orders-07
  baton audit --type Committed,Aborted --since 1h
  baton audit --timeline
  baton audit --follow --type Prepared,Drained,Committed,Activated`

type auditFlags struct {
	partition, worker, handoff, types, since, until string
	from, to                                        uint64
	limit                                           int
	desc, follow, timeline                          bool
}

func runAudit(args []string) error {
	f := newFlags("audit", "baton audit [--partition P] [--worker W] [--handoff H] [--type T[,T]] [--since T] [--until T] [--follow] [--timeline] [flags]", auditHelp, 0, 0)
	var c clientFlags
	c.register(f)
	var a auditFlags
	f.StringVar(&a.partition, "partition", "", "only events that concern this partition")
	f.StringVar(&a.worker, "worker", "", "only events that concern this worker")
	f.StringVar(&a.handoff, "handoff", "", "only events of this handoff (h12 or 12)")
	f.StringVar(&a.types, "type", "", "only these event types, comma-separated (Prepared,Drained,Committed,...)")
	f.StringVar(&a.since, "since", "", "only events at or after this time (RFC 3339, or a duration: 10m = ten minutes ago)")
	f.StringVar(&a.until, "until", "", "only events at or before this time (RFC 3339 or a duration ago)")
	f.uint64Var(&a.from, "from", 0, 0, math.MaxUint64, "only events at or after this raft index (0: from the first)")
	f.uint64Var(&a.to, "to", 0, 0, math.MaxUint64, "only events at or before this raft index (0: to the last)")
	f.intVar(&a.limit, "limit", 0, 0, math.MaxInt, "print at most this many events (0: all)")
	f.BoolVar(&a.desc, "desc", false, "newest first")
	f.BoolVar(&a.follow, "follow", false, "stream new events as they are appended")
	f.BoolVar(&a.timeline, "timeline", false, "group handoff events by handoff and print phase durations")
	if _, err := f.parse(args); err != nil {
		return err
	}
	q, err := a.query(time.Now())
	if err != nil {
		return err
	}
	switch {
	case a.follow && a.timeline:
		return usageErrorf("--follow and --timeline do not combine")
	case a.follow && a.desc:
		return usageErrorf("--follow reads oldest first: drop --desc")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	if a.follow {
		return followAudit(c, cl, q, a.limit)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	if a.timeline {
		return printTimeline(ctx, c, cl, q, a.limit)
	}
	w := newEventWriter(c.out, c.json)
	n := 0
	for ev, err := range cl.AuditAll(ctx, q) {
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if err := w.write(ev); err != nil {
			return err
		}
		n++
		if a.limit > 0 && n >= a.limit {
			break
		}
	}
	if n == 0 && !c.json {
		fmt.Fprintln(os.Stderr, "(no matching events)")
	}
	return nil
}

// query builds the client's audit query from the flags; now anchors relative
// times.
func (a auditFlags) query(now time.Time) (client.AuditQuery, error) {
	q := client.AuditQuery{From: fsm.RaftIndex(a.from), To: fsm.RaftIndex(a.to), Desc: a.desc}
	if a.to != 0 && a.from > a.to {
		return q, usageErrorf("--from %d is after --to %d", a.from, a.to)
	}
	var err error
	if q.Partition, err = optionalPartition("--partition", a.partition); err != nil {
		return q, err
	}
	if q.Worker, err = optionalWorker("--worker", a.worker); err != nil {
		return q, err
	}
	if a.handoff != "" {
		h, err := fsm.ParseHandoffID(a.handoff)
		if err != nil {
			return q, usageErrorf("--handoff %q: %v", a.handoff, err)
		}
		q.Handoff = h
	}
	for _, t := range splitList(a.types) {
		et, err := fsm.ParseEventType(t)
		if err != nil {
			return q, usageErrorf("--type %q: %v", t, err)
		}
		q.Types = append(q.Types, et)
	}
	if q.Since, err = parseWhen(a.since, now); err != nil {
		return q, usageErrorf("--since: %v", err)
	}
	if q.Until, err = parseWhen(a.until, now); err != nil {
		return q, usageErrorf("--until: %v", err)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Since.After(q.Until) {
		return q, usageErrorf("--since %s is after --until %s", a.since, a.until)
	}
	if a.limit > 0 {
		q.Limit = min(a.limit, 1000)
	} else {
		q.Limit = 1000
	}
	return q, nil
}

// parseWhen parses RFC 3339 or a duration meaning that long before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a duration like 10m", s)
	}
	if d < 0 {
		return time.Time{}, fmt.Errorf("%q: a duration ago must not be negative", s)
	}
	return now.Add(-d), nil
}

func followAudit(c clientFlags, cl *client.Client, q client.AuditQuery, limit int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if q.From == 0 && q.Since.IsZero() {
		sctx, cancel := context.WithTimeout(ctx, c.timeout)
		st, err := cl.Status(sctx)
		cancel()
		if err != nil {
			return fmt.Errorf("audit follow: %w", err)
		}
		q.From = fsm.RaftIndex(st.AuditLast + 1)
	}
	q.Limit = 0
	w := newEventWriter(c.out, c.json)
	n := 0
	for ev, err := range cl.FollowAudit(ctx, q, "") {
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted
			}
			return fmt.Errorf("audit follow: %w", err)
		}
		if err := w.write(ev); err != nil {
			return err
		}
		n++
		if limit > 0 && n >= limit {
			return nil
		}
	}
	return nil
}

// eventWriter prints events as table lines or JSON lines.
type eventWriter struct {
	w    io.Writer
	json bool
}

func newEventWriter(w io.Writer, asJSON bool) *eventWriter { return &eventWriter{w: w, json: asJSON} }

func (e *eventWriter) write(ev api.Event) error {
	if e.json {
		return e.writeJSON(ev)
	}
	_, err := fmt.Fprintln(e.w, formatEvent(ev.Event))
	return err
}

// writeJSON writes v as one line of JSON (see writeJSON).
func (e *eventWriter) writeJSON(v any) error { return writeJSON(e.w, v, false) }

// formatEvent renders one event on one line: leader time, index.seq, type, the
// event's details (its String() after the type), and its cause. The details
// and the cause are server data, made safe for a terminal.
func formatEvent(ev fsm.Event) string {
	typ := ev.Type().String()
	details := strings.TrimSpace(strings.TrimPrefix(ev.String(), typ))
	line := fmt.Sprintf("%s  %7s  %-18s %s", time.Unix(0, ev.Time).Format("2006-01-02 15:04:05.000"),
		fmt.Sprintf("%d.%d", ev.Index, ev.Seq), termSafe(typ), termSafe(details))
	if ev.Cause != "" {
		line += "  (" + termSafe(ev.Cause) + ")"
	}
	return line
}
