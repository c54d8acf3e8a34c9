package main

import (
	"fmt"
	"strings"

	"github.com/batonhq/baton/consumer"
	"github.com/batonhq/baton/fsm"
)

const partitionsUsage = "baton partitions declare|list|get|remove|move ..."

func runPartitions(args []string) error {
	if len(args) == 0 {
		return usageErrorf("usage: %s", partitionsUsage)
	}
	switch args[0] {
	case "declare":
		return runPartitionsDeclare(args[1:])
	case "list", "ls":
		return runPartitionsList(args[1:])
	case "get", "show":
		return runPartitionsGet(args[1:])
	case "remove", "rm":
		return runPartitionsRemove(args[1:])
	case "move":
		return moveCmd("partitions move", args[1:])
	case "-h", "--help", "-help", "help":
		fmt.Printf(`Usage: %s

  declare  declare partitions from a subject template
  list     list partitions with owner, epoch, phase, resume point and checkpoint
  get      show one partition
  remove   remove a partition (it must have no pending handoff)
  move     same as 'baton move'

Run 'baton partitions <verb> --help' for flags.
`, partitionsUsage)
		return nil
	}
	return usageErrorf("unknown 'partitions' verb %q; usage: %s", args[0], partitionsUsage)
}

func runPartitionsDeclare(args []string) error {
	f := newFlags("partitions declare",
		"baton partitions declare --template 'orders.{{.Partition}}.>' (--ids a,b,c | --prefix orders- --count 16 [--start 0]) [flags]", `
Declares partitions (operator). Each partition's JetStream subject is the
template expanded with its id ({{.Partition}}). Ids come from --ids, or from
--prefix and --count: --prefix orders- --count 3 declares orders-0, orders-1 and
orders-2 (numbers are zero-padded to the width of the largest). Declaring a
partition again with the same spec changes nothing.`, 0, 0)
	var c clientFlags
	c.register(f)
	tpl := f.String("template", "", "subject template, e.g. 'orders.{{.Partition}}.>' (required)")
	ids := f.String("ids", "", "comma-separated partition ids")
	prefix := f.String("prefix", "", "id prefix, with --count")
	count := f.Int("count", 0, "how many partitions to declare, with --prefix")
	start := f.Int("start", 0, "first number, with --prefix and --count")
	weight := f.Uint("weight", 1, "relative load of each partition")
	startAfter := f.Uint64("start-after", 0, "initial checkpoint: the first owner resumes after this stream sequence (0: from the start)")
	if _, err := f.parse(args); err != nil {
		return err
	}
	names, err := partitionIDs(*ids, *prefix, *count, *start)
	if err != nil {
		return err
	}
	if *tpl == "" {
		return usageErrorf("partitions declare needs --template")
	}
	specs := make([]fsm.PartitionSpec, 0, len(names))
	for _, id := range names {
		subj, err := consumer.Subject(*tpl, id)
		if err != nil {
			return usageErrorf("--template: %v", err)
		}
		specs = append(specs, fsm.PartitionSpec{ID: id, Subjects: []string{subj}, Weight: uint32(*weight), StartAfter: fsm.StreamSeq(*startAfter)})
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := c.ctx()
	defer cancel()
	r, err := cl.Declare(ctx, specs)
	return c.printWrite(fmt.Sprintf("declare %d partition(s)", len(specs)), r, err)
}

// partitionIDs expands --ids or --prefix/--count/--start.
func partitionIDs(ids, prefix string, count, start int) ([]fsm.PartitionID, error) {
	switch {
	case ids != "" && (prefix != "" || count != 0):
		return nil, usageErrorf("use either --ids or --prefix with --count")
	case ids != "":
		var out []fsm.PartitionID
		for _, s := range splitList(ids) {
			out = append(out, fsm.PartitionID(s))
		}
		return out, nil
	case count <= 0:
		return nil, usageErrorf("partitions declare needs --ids, or --count N (with --prefix)")
	case start < 0:
		return nil, usageErrorf("--start must be >= 0")
	}
	width := len(fmt.Sprint(start + count - 1))
	out := make([]fsm.PartitionID, count)
	for i := range out {
		out[i] = fsm.PartitionID(fmt.Sprintf("%s%0*d", prefix, width, start+i))
	}
	return out, nil
}

func runPartitionsList(args []string) error {
	f := newFlags("partitions list", "baton partitions list [flags]", `
Lists every partition: owner, epoch, phase, where the owner resumed, its last
checkpoint, pending handoff, pin and subjects.`, 0, 0)
	var c clientFlags
	_, cl, ctx, done, err := c.connect(f, args)
	if err != nil {
		return err
	}
	defer done()
	var all []fsm.PartitionInfo
	for p, err := range cl.AllPartitions(ctx) {
		if err != nil {
			return fmt.Errorf("partitions: %w", err)
		}
		all = append(all, p)
	}
	if c.json {
		return c.printJSON(all)
	}
	t := newTable(c.out, "PARTITION", "OWNER", "EPOCH", "PHASE", "RESUME", "CHECKPOINT", "HANDOFF", "PINNED", "SUBJECTS")
	for _, p := range all {
		h := "-"
		if ph := p.PendingHandoff; ph != nil {
			h = fmt.Sprintf("%d→%s", ph.ID, dash(ph.To))
		}
		t.row(p.ID, dash(p.Owner), p.Epoch, p.Phase, p.ResumeAfter, p.Checkpoint, h, dash(p.Pinned), strings.Join(p.Subjects, ","))
	}
	t.flush()
	if len(all) == 0 {
		fmt.Fprintln(c.out, "(no partitions)")
	}
	return nil
}

func runPartitionsGet(args []string) error {
	f := newFlags("partitions get", "baton partitions get PARTITION [flags]", "Shows one partition's full state.", 1, 1)
	var c clientFlags
	pos, cl, ctx, done, err := c.connect(f, args)
	if err != nil {
		return err
	}
	defer done()
	p, err := cl.Partition(ctx, fsm.PartitionID(pos[0]))
	if err != nil {
		return fmt.Errorf("partition %s: %w", pos[0], err)
	}
	if c.json {
		return c.printJSON(p)
	}
	t := newTable(c.out)
	t.row("Partition:", p.ID)
	t.row("Subjects:", strings.Join(p.Subjects, ", "))
	t.row("Weight:", max(p.Weight, 1))
	t.row("Owner:", fmt.Sprintf("%s (incarnation %d)", dash(p.Owner), p.OwnerIncarnation))
	t.row("Epoch:", p.Epoch)
	t.row("Phase:", p.Phase)
	t.row("Resume after:", p.ResumeAfter)
	t.row("Checkpoint:", p.Checkpoint)
	t.row("Pinned:", dash(p.Pinned))
	t.row("Declared at:", fmt.Sprintf("index %d", p.DeclaredIndex))
	t.row("Owner since:", fmt.Sprintf("index %d", p.OwnerIndex))
	for _, l := range p.Lingerers {
		t.row("Lingerer:", fmt.Sprintf("%s (incarnation %d)", l.Worker, l.Incarnation))
	}
	if h := p.PendingHandoff; h != nil {
		drained := "not yet"
		if h.Drained {
			drained = fmt.Sprintf("through %d", h.ThroughSeq)
		}
		t.row("Handoff:", fmt.Sprintf("%d: %s → %s, reason %s, prepared %s, drained %s", h.ID, h.From, dash(h.To), dash(h.Reason), ago(h.PreparedTime), drained))
	}
	t.flush()
	return nil
}

func runPartitionsRemove(args []string) error {
	f := newFlags("partitions remove", "baton partitions remove PARTITION [flags]", `
Removes a partition (operator). Its owner stops processing it. A partition with
a pending handoff cannot be removed until the handoff ends.`, 1, 1)
	var c clientFlags
	pos, cl, ctx, done, err := c.connect(f, args)
	if err != nil {
		return err
	}
	defer done()
	r, err := cl.RemovePartition(ctx, fsm.PartitionID(pos[0]))
	return c.printWrite("remove partition "+pos[0], r, err)
}
