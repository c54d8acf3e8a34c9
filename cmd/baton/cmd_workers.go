package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

func runWorkers(args []string) error {
	f := newFlags("workers", "baton workers [flags]", `
Lists every known worker: incarnation, state, cordon, weight, labels, when it
joined, and how many partitions it owns.`, 0, 0)
	var c clientFlags
	_, cl, ctx, done, err := c.connect(f, args)
	if err != nil {
		return err
	}
	defer done()
	wl, err := cl.Workers(ctx)
	if err != nil {
		return fmt.Errorf("workers: %w", err)
	}
	if c.json {
		return c.printJSON(wl)
	}
	owned := map[fsm.WorkerID]int{}
	for p, err := range cl.AllPartitions(ctx) {
		if err != nil {
			return fmt.Errorf("partitions: %w", err)
		}
		if p.Owner != "" {
			owned[p.Owner]++
		}
	}
	printWorkers(c, wl, owned)
	return nil
}

// printWorkers prints the workers table; owned counts each worker's partitions.
func printWorkers(c clientFlags, wl api.WorkerList, owned map[fsm.WorkerID]int) {
	t := newTable(c.out, "WORKER", "INCARNATION", "STATE", "CORDONED", "WEIGHT", "OWNS", "LABELS", "JOINED")
	for _, w := range wl.Workers {
		var labels []string
		for _, l := range w.Labels {
			labels = append(labels, termSafe(l.Key)+"="+termSafe(l.Value))
		}
		t.row(w.ID, w.Incarnation, w.State, w.Cordoned, max(w.Weight, 1), owned[w.ID], dash(strings.Join(labels, ",")), ago(w.JoinedTime))
	}
	t.flush()
	if len(wl.Workers) == 0 {
		fmt.Fprintln(c.out, "(no workers)")
	}
}

// runCordon is `baton cordon` (and its older name, `baton drain`, kept for
// scripts: in Baton a drain is what an old owner does in a handoff).
func runCordon(verb string) func([]string) error {
	return func(args []string) error {
		f := newFlags(verb, "baton "+verb+" WORKER [--undo] [flags]", `
Cordons a worker for maintenance: it receives nothing new and the controller
hands its partitions to others with graceful handoffs. The worker keeps running
(stop it once 'baton workers' shows it owns nothing). --undo puts it back in
service.`, 1, 1)
		var c clientFlags
		undo := f.Bool("undo", false, "uncordon the worker")
		pos, cl, ctx, done, err := c.connect(f, args)
		if err != nil {
			return err
		}
		defer done()
		w, err := workerArg("WORKER", pos[0])
		if err != nil {
			return err
		}
		r, err := cl.Cordon(ctx, w, !*undo)
		what := "cordon " + string(w)
		if *undo {
			what = "uncordon " + string(w)
		}
		return c.printWrite(what, r, err)
	}
}

func runRemoveWorker(args []string) error {
	f := newFlags("remove-worker", "baton remove-worker WORKER [flags]", `
Removes a worker (operator): it is gone at once, and the partitions it owned are
force-committed to others from their last checkpoints. For a live worker prefer
'baton cordon' and a graceful stop.`, 1, 1)
	var c clientFlags
	pos, cl, ctx, done, err := c.connect(f, args)
	if err != nil {
		return err
	}
	defer done()
	w, err := workerArg("WORKER", pos[0])
	if err != nil {
		return err
	}
	r, err := cl.RemoveWorker(ctx, w)
	return c.printWrite("remove worker "+pos[0], r, err)
}

func runMove(args []string) error { return moveCmd("move", args) }

func moveCmd(name string, args []string) error {
	f := newFlags(name, "baton "+name+" PARTITION --to WORKER [--force] [--drain-timeout 30s] [flags]", `
Moves a partition to a worker. Without --force it is a graceful two-phase
handoff: the owner drains and reports how far it got, then the controller
commits and the new owner resumes exactly there. With --force the partition
moves now and the new owner resumes from the last checkpoint (messages after it
may be processed twice). Follow it with 'baton audit --partition P --follow'.`, 1, 1)
	var c clientFlags
	c.register(f)
	var req api.MoveRequest
	var to string
	var drain time.Duration
	f.StringVar(&to, "to", "", "target worker (required)")
	f.BoolVar(&req.Force, "force", false, "commit at once from the last checkpoint instead of draining")
	f.durationVar(&drain, "drain-timeout", 0, 0, fsm.MaxDrainTimeout,
		"drain deadline of this handoff (0: the server's --drain-timeout; millisecond resolution)")
	f.StringVar(&req.Reason, "reason", "", fmt.Sprintf("reason recorded in the audit log (at most %d bytes, printable)", fsm.MaxReasonLen))
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if to == "" {
		return usageErrorf("%s needs --to WORKER", name)
	}
	p, err := partitionArg("PARTITION", pos[0])
	if err != nil {
		return err
	}
	if req.To, err = workerArg("--to", to); err != nil {
		return err
	}
	if err := reasonArg("--reason", req.Reason); err != nil {
		return err
	}
	if req.DrainTimeoutMS, err = drainTimeoutMS("--drain-timeout", drain); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := c.ctx()
	defer cancel()
	r, err := cl.Move(ctx, p, req)
	return c.printWrite(fmt.Sprintf("move %s to %s", pos[0], to), r, err)
}

func runPin(args []string) error {
	f := newFlags("pin", "baton pin PARTITION WORKER | baton pin PARTITION --unpin [flags]", `
Pins a partition to a worker: placement keeps it there while the worker is
eligible (moving it there with a graceful handoff if needed). --unpin releases
the pin.`, 1, 2)
	var c clientFlags
	c.register(f)
	unpin := f.Bool("unpin", false, "remove the partition's pin")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	var w fsm.WorkerID
	switch {
	case *unpin && len(pos) == 1:
	case !*unpin && len(pos) == 2:
		if w, err = workerArg("WORKER", pos[1]); err != nil {
			return err
		}
	default:
		return usageErrorf("usage: baton pin PARTITION WORKER | baton pin PARTITION --unpin")
	}
	p, err := partitionArg("PARTITION", pos[0])
	if err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := c.ctx()
	defer cancel()
	r, err := cl.Pin(ctx, p, w)
	what := fmt.Sprintf("pin %s to %s", pos[0], w)
	if *unpin {
		what = "unpin " + pos[0]
	}
	return c.printWrite(what, r, err)
}

func runPause(args []string) error  { return rebalanceCmd("pause", true, args) }
func runResume(args []string) error { return rebalanceCmd("resume", false, args) }

func rebalanceCmd(name string, paused bool, args []string) error {
	f := newFlags(name, "baton "+name+" [flags]", `
Pauses or resumes voluntary rebalancing cluster-wide. While paused the controller
still claims unassigned partitions and fails over those of dead workers, but
moves nothing for balance.`, 0, 0)
	var c clientFlags
	_, cl, ctx, done, err := c.connect(f, args)
	if err != nil {
		return err
	}
	defer done()
	r, err := cl.SetRebalance(ctx, paused)
	return c.printWrite(name+" rebalancing", r, err)
}

func runHandoffs(args []string) error {
	f := newFlags("handoffs", "baton handoffs [flags]", `
Lists pending handoffs: partition, from and to, reason, when prepared, whether
drained (and through which stream sequence), and the drain deadline.`, 0, 0)
	var c clientFlags
	_, cl, ctx, done, err := c.connect(f, args)
	if err != nil {
		return err
	}
	defer done()
	hl, err := cl.Handoffs(ctx)
	if err != nil {
		return fmt.Errorf("handoffs: %w", err)
	}
	if c.json {
		return c.printJSON(hl)
	}
	printHandoffs(c, hl)
	return nil
}

// printHandoffs prints the pending handoffs table.
func printHandoffs(c clientFlags, hl api.HandoffList) {
	t := newTable(c.out, "HANDOFF", "PARTITION", "FROM", "TO", "EPOCH", "REASON", "PREPARED", "DRAINED", "DEADLINE")
	for _, h := range hl.Handoffs {
		drained := "no"
		if h.Drained {
			drained = fmt.Sprintf("through %d", h.ThroughSeq)
		}
		deadline := "-"
		if h.Deadline != 0 {
			deadline = fmt.Sprintf("in %s", time.Until(time.Unix(0, h.Deadline)).Round(100*time.Millisecond))
		}
		t.row(h.ID, h.Partition, h.From, dash(h.To), h.Epoch, dash(h.Reason), ago(h.PreparedTime), drained, deadline)
	}
	t.flush()
	if len(hl.Handoffs) == 0 {
		fmt.Fprintf(c.out, "(no pending handoffs at index %d)\n", hl.Index)
	}
}

func runPlan(args []string) error {
	f := newFlags("plan", "baton plan [flags]", `
Shows the controller's dry run: where placement is heading (each worker's load
and bounds), the actions it would take now with their reasons, and the actions
it holds back and why (throttles, pause, stabilization window, no eligible
worker). Nothing is changed.`, 0, 0)
	var c clientFlags
	_, cl, ctx, done, err := c.connect(f, args)
	if err != nil {
		return err
	}
	defer done()
	d, err := cl.Plan(ctx)
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	if c.json {
		return c.printJSON(d)
	}
	printPlan(c, d)
	return nil
}

func printPlan(c clientFlags, d api.Plan) {
	paused := ""
	if d.Paused {
		paused = " (rebalancing paused)"
	}
	fmt.Fprintf(c.out, "Plan at index %d%s, imbalance %.2f\n\n", d.Index, paused, d.Imbalance)
	if r := strings.TrimRight(d.Rendered, "\n"); r != "" {
		fmt.Fprintln(c.out, termSafeLines(r))
		fmt.Fprintln(c.out)
	}
	var run, held []api.PlanAction
	for _, n := range d.Actions {
		if n.Action == api.PlanHold {
			held = append(held, n)
		} else {
			run = append(run, n)
		}
	}
	fmt.Fprintf(c.out, "Actions now (%d):\n", len(run))
	if len(run) > 0 {
		t := newTable(c.out, "  ACTION", "PARTITION", "FROM", "TO", "REASON", "DETAIL")
		for _, n := range run {
			t.row("  "+n.Action, n.Partition, dash(n.From), dash(n.To), n.Reason, dash(n.Detail))
		}
		t.flush()
	}
	fmt.Fprintf(c.out, "\nHeld back (%d):\n", len(held))
	if len(held) > 0 {
		t := newTable(c.out, "  PARTITION", "FROM", "TO", "REASON", "WHY HELD")
		for _, n := range held {
			t.row("  "+string(n.Partition), dash(n.From), dash(n.To), n.Reason, dash(n.Detail))
		}
		t.flush()
	}
	for _, w := range d.Warnings {
		fmt.Fprintf(c.out, "warning: %s\n", termSafe(w))
	}
}
