package main

import (
	"fmt"
	"strings"

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
	printPartitions(c, all)
	return nil
}

// printPartitions prints the partitions table.
func printPartitions(c clientFlags, all []fsm.PartitionInfo) {
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
}

func runPartitionsGet(args []string) error {
	f := newFlags("partitions get", "baton partitions get PARTITION [flags]", "Shows one partition's full state.", 1, 1)
	var c clientFlags
	pos, cl, ctx, done, err := c.connect(f, args)
	if err != nil {
		return err
	}
	defer done()
	id, err := partitionArg("PARTITION", pos[0])
	if err != nil {
		return err
	}
	p, err := cl.Partition(ctx, id)
	if err != nil {
		return fmt.Errorf("partition %s: %w", pos[0], err)
	}
	if c.json {
		return c.printJSON(p)
	}
	printPartition(c, p)
	return nil
}

// printPartition prints one partition's state.
func printPartition(c clientFlags, p fsm.PartitionInfo) {
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
	id, err := partitionArg("PARTITION", pos[0])
	if err != nil {
		return err
	}
	r, err := cl.RemovePartition(ctx, id)
	return c.printWrite("remove partition "+pos[0], r, err)
}
