package core_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/batonhq/baton/consumer/internal/core"
	"github.com/batonhq/baton/fsm"
)

// TestScenarios runs the scenario files in testdata/: each is a specification
// of one behaviour of the core, written as inputs and the exact actions they
// produce. Run with -rewrite to regenerate the expected output, then review
// the diff like code: every line must be right by docs/protocol.md.
func TestScenarios(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			e := &scenario{}
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				return e.handle(t, d)
			})
		})
	}
}

// scenario drives one core from a scenario file. It fills in what a directive
// leaves out from the actions seen so far (the running handler's generation,
// the latest filter version, the report in flight), and checks after every
// directive what must hold in any scenario: no Dispatch at or past the lease,
// and never two handlers of one partition at once.
type scenario struct {
	t0, now time.Time
	c       *core.Core
	inc     fsm.Incarnation

	running  map[fsm.PartitionID]core.Dispatch // dispatched, no HandlerDone yet
	reads    map[fsm.PartitionID]core.Read     // the latest Read per partition
	cleans   map[fsm.PartitionID]core.Clean
	reports  map[core.ReportKind][]reportItem // the report of each kind in flight
	filter   core.SetFilter                   // the latest SetFilter
	subjects map[fsm.PartitionID][]string
}

type reportItem struct {
	part  fsm.PartitionID
	epoch fsm.Epoch
}

// handle runs one directive. The directives (times are offsets from the
// scenario's start; at= moves the clock before the input, and is optional):
//
//	init retention=limits|interest|workqueue [concurrency=16] [window=256]
//	     [drain-timeout=10s] [ckpt-every=1s] [stuck=10s] [retry-min=20ms]
//	     [retry-max=1s] [max-subjects=1000] [refuse=(p9)]
//	register inc=1 ttl=5s [sent=T]           Registered (sent defaults to now)
//	renew [inc=N] [sent=T]                   Renewed
//	lost [inc=N]                             SessionLost
//	assign [inc=N] [state=active|leaving|gone] [worker=w1]
//	  p1 activating epoch=2 [resume=10] [checkpoint=5] [handoff=3] [to=w2]
//	     [lingerers=(w2/1/gone, w3/4)] [subjects=(p1.>)]
//	  handed p2 [owner=w2] [phase=activating]
//	deliver p1 seq=(5,6,8-9) [subject=p1.x] [inc=N] [gap]   consumer deliveries (a batch;
//	     gap: the first comes after a gap in the delivery sequence)
//	read-done p1 [seq=(1,2)] [eof] [err=msg] [gen=N]
//	handler-done p1 [skipped|cancelled] [gen=N] [epoch=N] [seq=N]
//	filter-done [version=N] [recreated] [err=msg] [inc=N] (err=overlap: core.ErrOverlap)
//	report-done drained|activated|checkpoints [err=msg] [refused] [item-err=(p1)]
//	clean-done p1 [err=msg]
//	leave-done [err=msg]
//	tick (at=T | by=D)
//	close
//	status / next-tick
//
// Every directive prints the actions it produced, one per line; with the
// argument status it also prints the core's status.
func (e *scenario) handle(t *testing.T, d *datadriven.TestData) string {
	t.Helper()
	if d.Cmd != "init" && e.c == nil {
		d.Fatalf(t, "init first")
	}
	if d.Cmd != "init" {
		if at, ok := arg(d, "at"); ok {
			e.move(t, d, e.t0.Add(duration(t, d, at)))
		}
	}
	now := e.now
	switch d.Cmd {
	case "init":
		e.init(t, d)
		return "ok"
	case "register":
		mustArg(t, d, "inc")
		e.inc = fsm.Incarnation(uintArg(t, d, "inc", 0))
		e.c.Registered(now, e.inc, duration(t, d, mustArg(t, d, "ttl")), e.timeArg(t, d, "sent"))
	case "renew":
		e.c.Renewed(now, e.incArg(t, d), e.timeArg(t, d, "sent"))
	case "lost":
		e.c.SessionLost(now, e.incArg(t, d))
	case "assign":
		e.c.Assign(now, e.assignment(t, d))
	case "deliver":
		var ds []*core.Delivery
		for _, s := range seqs(t, d) {
			ds = append(ds, &core.Delivery{Seq: s, Subject: e.subject(t, d), Inc: e.incArg(t, d)})
		}
		if d.HasArg("gap") {
			ds[0].Gap = true
		}
		if len(ds) == 1 {
			e.c.Deliver(now, ds[0])
		} else {
			e.c.DeliverBatch(now, ds)
		}
	case "read-done":
		p := e.partArg(t, d)
		r, ok := e.reads[p]
		if !ok && !d.HasArg("gen") {
			d.Fatalf(t, "no Read of %s seen", p)
		}
		var ds []*core.Delivery
		for _, s := range seqs(t, d) {
			ds = append(ds, &core.Delivery{Seq: s, Subject: e.subject(t, d), FromRead: true})
		}
		e.c.ReadDone(now, p, uintArg(t, d, "gen", r.Gen), ds, d.HasArg("eof"), errArg(d, "err"))
	case "handler-done":
		p := e.partArg(t, d)
		j, ok := e.running[p]
		if !ok && !d.HasArg("gen") {
			d.Fatalf(t, "no handler of %s is running", p)
		}
		delete(e.running, p)
		var seq fsm.StreamSeq
		if j.Msg != nil {
			seq = j.Msg.Seq
		}
		processed := !d.HasArg("skipped") && !d.HasArg("cancelled")
		e.c.HandlerDone(now, p, uintArg(t, d, "gen", j.Gen), fsm.Epoch(uintArg(t, d, "epoch", uint64(j.Epoch))),
			fsm.StreamSeq(uintArg(t, d, "seq", uint64(seq))), processed)
	case "filter-done":
		e.c.FilterDone(now, e.incArg(t, d), uintArg(t, d, "version", e.filter.Version), d.HasArg("recreated"), errArg(d, "err"))
	case "report-done":
		e.reportDone(t, d)
	case "clean-done":
		p := e.partArg(t, d)
		e.c.CleanDone(now, p, e.cleans[p].Epoch, errArg(d, "err"))
	case "leave-done":
		e.c.LeaveDone(now, e.incArg(t, d), errArg(d, "err"))
	case "tick":
		if by, ok := arg(d, "by"); ok {
			e.move(t, d, e.now.Add(duration(t, d, by)))
		}
		e.c.Tick(e.now)
	case "close":
		e.c.Close(now)
	case "status":
		return formatStatus(e.c.Status(), e.t0)
	case "next-tick":
		return formatAt(e.c.NextTick(), e.t0)
	default:
		d.Fatalf(t, "unknown directive %s", d.Cmd)
	}
	out := e.take(t, d)
	if d.HasArg("status") {
		out += "status: " + formatStatus(e.c.Status(), e.t0)
	}
	if out == "" {
		return "(none)"
	}
	return out
}

func (e *scenario) init(t *testing.T, d *datadriven.TestData) {
	cfg := core.Config{Worker: "w1", Retention: core.Limits}
	if r, ok := arg(d, "retention"); ok {
		switch r {
		case "limits":
		case "interest":
			cfg.Retention = core.Interest
		case "workqueue":
			cfg.Retention = core.WorkQueue
		default:
			d.Fatalf(t, "unknown retention %s", r)
		}
	}
	cfg.Concurrency = int(uintArg(t, d, "concurrency", 16))
	cfg.ReadWindow = int(uintArg(t, d, "window", 256))
	cfg.MaxSubjects = int(uintArg(t, d, "max-subjects", 1000))
	for key, dst := range map[string]*time.Duration{
		"drain-timeout": &cfg.DrainTimeout, "ckpt-every": &cfg.CheckpointEvery, "stuck": &cfg.StuckAfter,
		"retry-min": &cfg.RetryMin, "retry-max": &cfg.RetryMax,
	} {
		if v, ok := arg(d, key); ok {
			*dst = duration(t, d, v)
		}
	}
	if a, ok := d.Arg("refuse"); ok {
		refused := a.Vals
		cfg.Check = func(p fsm.AssignedPartition) error {
			if slices.Contains(refused, string(p.Partition)) {
				return fmt.Errorf("partition %s: subjects break the template", p.Partition)
			}
			return nil
		}
	}
	// A fixed start, so that the text is the same on every run.
	e.t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	e.now = e.t0
	e.c = core.New(cfg)
	e.running = map[fsm.PartitionID]core.Dispatch{}
	e.reads = map[fsm.PartitionID]core.Read{}
	e.cleans = map[fsm.PartitionID]core.Clean{}
	e.reports = map[core.ReportKind][]reportItem{}
	e.subjects = map[fsm.PartitionID][]string{}
}

// take prints the actions of the last input, remembers what later directives
// default to, and checks the invariants every action must keep.
func (e *scenario) take(t *testing.T, d *datadriven.TestData) string {
	t.Helper()
	var b strings.Builder
	for _, a := range e.c.Take() {
		b.WriteString(formatAction(a))
		b.WriteString("\n")
		switch a := a.(type) {
		case core.Dispatch:
			if lease := e.c.Lease(); !e.now.Before(lease) {
				t.Errorf("%s: %s at %s, at or past the lease %s", d.Pos, formatAction(a), formatAt(e.now, e.t0), formatAt(lease, e.t0))
			}
			if r, ok := e.running[a.Partition]; ok {
				t.Errorf("%s: %s while %s still runs", d.Pos, formatAction(a), formatAction(r))
			}
			e.running[a.Partition] = a
		case core.Cancel:
			if r, ok := e.running[a.Partition]; !ok || r.Gen != a.Gen {
				t.Errorf("%s: %s: no such handler runs", d.Pos, formatAction(a))
			}
		case core.Read:
			e.reads[a.Partition] = a
		case core.Clean:
			e.cleans[a.Partition] = a
		case core.SetFilter:
			e.filter = a
		case core.ReportDrained:
			var items []reportItem
			for _, it := range a.Items {
				items = append(items, reportItem{it.Partition, it.Epoch})
			}
			e.inFlight(t, d, core.KindDrained, items)
		case core.ReportActivated:
			var items []reportItem
			for _, it := range a.Items {
				items = append(items, reportItem{it.Partition, it.Epoch})
			}
			e.inFlight(t, d, core.KindActivated, items)
		case core.ReportCheckpoints:
			var items []reportItem
			for _, it := range a.Items {
				items = append(items, reportItem{it.Partition, it.Epoch})
			}
			e.inFlight(t, d, core.KindCheckpoints, items)
		}
	}
	return b.String()
}

// inFlight records a report sent; the core keeps one of each kind in flight.
func (e *scenario) inFlight(t *testing.T, d *datadriven.TestData, kind core.ReportKind, items []reportItem) {
	if _, ok := e.reports[kind]; ok {
		t.Errorf("%s: a second report of kind %d while one is in flight", d.Pos, kind)
	}
	e.reports[kind] = items
}

func (e *scenario) move(t *testing.T, d *datadriven.TestData, to time.Time) {
	if to.Before(e.now) {
		// The core must take a clock that goes back as no time passing; the
		// scenarios that say so pass at= explicitly.
		d.Logf(t, "clock goes back from %s to %s", formatAt(e.now, e.t0), formatAt(to, e.t0))
	}
	e.now = to
}

func (e *scenario) reportDone(t *testing.T, d *datadriven.TestData) {
	var kind core.ReportKind
	switch {
	case d.HasArg("drained"):
		kind = core.KindDrained
	case d.HasArg("activated"):
		kind = core.KindActivated
	case d.HasArg("checkpoints"):
		kind = core.KindCheckpoints
	default:
		d.Fatalf(t, "report-done needs drained, activated or checkpoints")
	}
	items, ok := e.reports[kind]
	if !ok {
		d.Fatalf(t, "no report of that kind in flight")
	}
	delete(e.reports, kind)
	var itemErrs []error
	var refusedItems []string
	if a, ok := d.Arg("item-err"); ok {
		refusedItems = a.Vals
	}
	parts := make([]fsm.PartitionID, len(items))
	epochs := make([]fsm.Epoch, len(items))
	for i, it := range items {
		parts[i], epochs[i] = it.part, it.epoch
		var ie error
		if slices.Contains(refusedItems, string(it.part)) {
			ie = errors.New("refused")
		}
		itemErrs = append(itemErrs, ie)
	}
	e.c.ReportDone(e.now, e.incArg(t, d), kind, parts, epochs, itemErrs, errArg(d, "err"), d.HasArg("refused"))
}

func (e *scenario) assignment(t *testing.T, d *datadriven.TestData) fsm.Assignment {
	a := fsm.Assignment{Worker: "w1", Incarnation: e.incArg(t, d), State: fsm.WorkerActive}
	if w, ok := arg(d, "worker"); ok {
		a.Worker = fsm.WorkerID(w)
	}
	if s, ok := arg(d, "state"); ok {
		if err := a.State.UnmarshalText([]byte(s)); err != nil {
			d.Fatalf(t, "%v", err)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		cmd, args, err := datadriven.ParseLine(line)
		if err != nil {
			d.Fatalf(t, "%v", err)
		}
		ld := &datadriven.TestData{Pos: d.Pos, Cmd: cmd, CmdArgs: args}
		if cmd == "handed" {
			p := fsm.PartitionID(args[0].Key)
			h := fsm.HandedPartition{Partition: p, Subjects: e.subjectsOf(t, ld, p), Phase: fsm.PhaseActivating}
			if o, ok := arg(ld, "owner"); ok {
				h.Owner = fsm.WorkerID(o)
			}
			if ph, ok := arg(ld, "phase"); ok {
				if err := h.Phase.UnmarshalText([]byte(ph)); err != nil {
					d.Fatalf(t, "%v", err)
				}
			}
			a.Handed = append(a.Handed, h)
			continue
		}
		p := fsm.PartitionID(cmd)
		ap := fsm.AssignedPartition{Partition: p, Subjects: e.subjectsOf(t, ld, p), Epoch: fsm.Epoch(uintArg(t, ld, "epoch", 1)),
			ResumeAfter: fsm.StreamSeq(uintArg(t, ld, "resume", 0)), Checkpoint: fsm.StreamSeq(uintArg(t, ld, "checkpoint", 0)),
			Handoff: fsm.HandoffID(uintArg(t, ld, "handoff", 0))}
		if len(args) == 0 || args[0].Vals != nil {
			d.Fatalf(t, "%s: the phase comes first", line)
		}
		if err := ap.Phase.UnmarshalText([]byte(args[0].Key)); err != nil {
			d.Fatalf(t, "%v", err)
		}
		if to, ok := arg(ld, "to"); ok {
			ap.HandoffTo = fsm.WorkerID(to)
		}
		if la, ok := ld.Arg("lingerers"); ok {
			for _, v := range la.Vals {
				f := strings.Split(v, "/")
				n, err := strconv.ParseUint(f[1], 10, 64)
				if err != nil {
					d.Fatalf(t, "lingerer %s: %v", v, err)
				}
				ap.Lingerers = append(ap.Lingerers, fsm.Lingerer{Worker: fsm.WorkerID(f[0]), Incarnation: fsm.Incarnation(n), Gone: len(f) > 2 && f[2] == "gone"})
			}
		}
		a.Partitions = append(a.Partitions, ap)
	}
	return a
}

// subjectsOf is a partition's subjects: subjects= or, by default, "<id>.>".
func (e *scenario) subjectsOf(t *testing.T, d *datadriven.TestData, p fsm.PartitionID) []string {
	if a, ok := d.Arg("subjects"); ok {
		e.subjects[p] = a.Vals
		return a.Vals
	}
	s := []string{string(p) + ".>"}
	e.subjects[p] = s
	return s
}

// subject is a delivery's subject: subject= or "<partition>.x".
func (e *scenario) subject(t *testing.T, d *datadriven.TestData) string {
	if s, ok := arg(d, "subject"); ok {
		return s
	}
	return string(e.partArg(t, d)) + ".x"
}

func (e *scenario) partArg(t *testing.T, d *datadriven.TestData) fsm.PartitionID {
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 && !slices.Contains(flagArgs, a.Key) {
			return fsm.PartitionID(a.Key)
		}
	}
	d.Fatalf(t, "%s needs a partition", d.Cmd)
	return ""
}

var flagArgs = []string{"eof", "skipped", "cancelled", "recreated", "refused", "status", "drained", "activated", "checkpoints"}

func (e *scenario) incArg(t *testing.T, d *datadriven.TestData) fsm.Incarnation {
	return fsm.Incarnation(uintArg(t, d, "inc", uint64(e.inc)))
}

func (e *scenario) timeArg(t *testing.T, d *datadriven.TestData, key string) time.Time {
	if v, ok := arg(d, key); ok {
		return e.t0.Add(duration(t, d, v))
	}
	return e.now
}

func arg(d *datadriven.TestData, key string) (string, bool) {
	a, ok := d.Arg(key)
	if !ok || len(a.Vals) == 0 {
		return "", false
	}
	return a.Vals[0], true
}

func mustArg(t *testing.T, d *datadriven.TestData, key string) string {
	v, ok := arg(d, key)
	if !ok {
		d.Fatalf(t, "%s needs %s=", d.Cmd, key)
	}
	return v
}

func uintArg(t *testing.T, d *datadriven.TestData, key string, def uint64) uint64 {
	v, ok := arg(d, key)
	if !ok {
		return def
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		d.Fatalf(t, "%s: %v", key, err)
	}
	return n
}

func errArg(d *datadriven.TestData, key string) error {
	if v, ok := arg(d, key); ok {
		if v == "overlap" {
			return fmt.Errorf("filtered consumer not unique on workqueue stream: %w", core.ErrOverlap)
		}
		return errors.New(v)
	}
	return nil
}

func duration(t *testing.T, d *datadriven.TestData, v string) time.Duration {
	x, err := time.ParseDuration(v)
	if err != nil {
		d.Fatalf(t, "%v", err)
	}
	return x
}

func seqs(t *testing.T, d *datadriven.TestData) []fsm.StreamSeq {
	a, ok := d.Arg("seq")
	if !ok {
		return nil
	}
	var out []fsm.StreamSeq
	for _, v := range a.Vals {
		lo, hi, isRange := strings.Cut(v, "-")
		from, err := strconv.ParseUint(lo, 10, 64)
		if err != nil {
			d.Fatalf(t, "seq %s: %v", v, err)
		}
		to := from
		if isRange {
			if to, err = strconv.ParseUint(hi, 10, 64); err != nil {
				d.Fatalf(t, "seq %s: %v", v, err)
			}
		}
		for s := from; s <= to; s++ {
			out = append(out, fsm.StreamSeq(s))
		}
	}
	return out
}
