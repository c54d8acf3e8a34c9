package fsmtest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/batonhq/baton/fsm"
)

// Handle runs one scenario directive and returns its output. Every directive that
// proposes a command accepts id=<request id>, actor=<actor> and cause=<cause>.
// Omitted epochs, owners, incarnations and handoff ids default to the current
// ones, so scenarios name only what they are about.
//
//	time 5s                          set the leader clock (Go duration from 0)
//	join w1 [weight=2] [label=zone:a] [replace]
//	leave w1 [inc=N]                 graceful leave
//	expire w1 [inc=N]
//	remove-worker w1
//	declare                          one partition per input line:
//	  p1 orders.p1.> [orders.p1b] [weight=N] [start=N]
//	remove-partition p1 [p2 ...]
//	claim p1 w1 [p2 w2 ...]
//	prepare p1 to=w2 [from=w1] [epoch=N] [reason=r] [deadline=10s]   (to= empty: release)
//	drain p1 through=N [worker=w1] [epoch=N] [handoff=N] [inc=N]
//	commit p1 [handoff=N]
//	force p1 to=w2 reason=owner_left|drain_deadline|operator [epoch=N]
//	activate p1 [worker=w1] [epoch=N] [inc=N]
//	abort p1 [handoff=N] [reason=r]
//	release p1 through=N [worker=w1] [epoch=N]
//	checkpoint w1 [inc=N]            one "partition seq [epoch=N]" per input line
//	cordon w1 [off]
//	pin p1 [w1]
//	pause / resume
//	register-node n1 addr=http://host:port
//	remove-node n1
//	state                            workers, partitions, handoffs
//	assignment w1
//	snapshot-restore                 round trip through the snapshot encoding
//	replay                           fold the audit trail and compare (invariant 5)
func (e *Env) Handle(t *testing.T, d *datadriven.TestData) string {
	t.Helper()
	a := args{d: d}
	var body fsm.Body
	switch d.Cmd {
	case "time":
		dur, err := time(a.pos(0))
		if err != nil {
			d.Fatalf(t, "%v", err)
		}
		e.Now = 1_000_000_000 + dur
		return "ok\n"
	case "state":
		return FormatState(e.State)
	case "assignment":
		as, ok := e.State.Assignment(fsm.WorkerID(a.pos(0)))
		if !ok {
			return "unknown worker\n"
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "%s %s incarnation=%d\n", as.Worker, as.State, as.Incarnation)
		for _, p := range as.Partitions {
			fmt.Fprintf(&sb, "  %s %s epoch=%d resume_after=%d", p.Partition, p.Phase, p.Epoch, p.ResumeAfter)
			if p.Handoff != 0 {
				fmt.Fprintf(&sb, " handoff=%s to=%s", p.Handoff, p.HandoffTo)
			}
			for _, l := range p.Lingerers {
				fmt.Fprintf(&sb, " lingerer=%s@%d", l.Worker, l.Incarnation)
			}
			sb.WriteByte('\n')
		}
		for _, h := range as.Handed {
			fmt.Fprintf(&sb, "  handed %s (now %s, %s)\n", h.Partition, h.Owner, h.Phase)
		}
		return sb.String()
	case "snapshot-restore":
		e.SnapshotRestore()
		return "ok\n"
	case "replay":
		e.CheckReplay()
		return "ok\n"
	case "join":
		j := fsm.Join{Worker: fsm.WorkerID(a.pos(0)), Weight: uint32(a.num("weight", 0)), Replace: a.has("replace")}
		for _, l := range a.all("label") {
			k, v, _ := strings.Cut(l, ":")
			j.Labels = append(j.Labels, fsm.Label{Key: k, Value: v})
		}
		body = j
	case "leave":
		w := fsm.WorkerID(a.pos(0))
		body = fsm.Leave{Worker: w, Incarnation: e.inc(a, w)}
	case "expire":
		w := fsm.WorkerID(a.pos(0))
		body = fsm.Expire{Worker: w, Incarnation: e.inc(a, w)}
	case "remove-worker":
		body = fsm.RemoveWorker{Worker: fsm.WorkerID(a.pos(0))}
	case "declare":
		var specs []fsm.PartitionSpec
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			spec := fsm.PartitionSpec{ID: fsm.PartitionID(f[0])}
			for _, x := range f[1:] {
				switch k, v, ok := strings.Cut(x, "="); {
				case ok && k == "weight":
					spec.Weight = uint32(atoi(t, d, v))
				case ok && k == "start":
					spec.StartAfter = fsm.StreamSeq(atoi(t, d, v))
				default:
					spec.Subjects = append(spec.Subjects, x)
				}
			}
			specs = append(specs, spec)
		}
		body = fsm.Declare{Partitions: specs}
	case "remove-partition":
		var ids []fsm.PartitionID
		for _, s := range a.positional() {
			ids = append(ids, fsm.PartitionID(s))
		}
		body = fsm.RemovePartitions{Partitions: ids}
	case "claim":
		ps := a.positional()
		var c fsm.Claim
		for i := 0; i+1 < len(ps); i += 2 {
			c.Items = append(c.Items, fsm.ClaimItem{Partition: fsm.PartitionID(ps[i]), Worker: fsm.WorkerID(ps[i+1])})
		}
		body = c
	case "prepare":
		p := e.part(a)
		dl := int64(0)
		if s := a.str("deadline", ""); s != "" {
			// The deadline is given in scenario time; the command carries it
			// relative to now.
			dur, err := time(s)
			if err != nil {
				d.Fatalf(t, "%v", err)
			}
			dl = 1_000_000_000 + dur - e.Now
		}
		body = fsm.Prepare{Items: []fsm.PrepareItem{{
			Partition: p.ID, Epoch: fsm.Epoch(a.num("epoch", uint64(p.Epoch))),
			From: fsm.WorkerID(a.str("from", string(p.Owner))), To: fsm.WorkerID(a.str("to", "")),
			Reason: a.str("reason", ""), DrainTimeout: dl,
		}}}
	case "drain":
		p := e.part(a)
		w := fsm.WorkerID(a.str("worker", string(p.Owner)))
		body = fsm.DrainReport{Worker: w, Incarnation: e.inc(a, w), Items: []fsm.DrainItem{{
			Handoff: fsm.HandoffID(a.num("handoff", uint64(p.Handoff))), Partition: p.ID,
			Epoch: fsm.Epoch(a.num("epoch", uint64(p.Epoch))), ThroughSeq: fsm.StreamSeq(a.num("through", 0)),
		}}}
	case "commit":
		p := e.part(a)
		body = fsm.Commit{Items: []fsm.CommitItem{{Handoff: fsm.HandoffID(a.num("handoff", uint64(p.Handoff))), Partition: p.ID}}}
	case "force":
		p := e.part(a)
		var r fsm.ForceReason
		if err := r.UnmarshalText([]byte(a.str("reason", ""))); err != nil {
			d.Fatalf(t, "%v", err)
		}
		body = fsm.ForceCommit{Items: []fsm.ForceItem{{
			Partition: p.ID, Epoch: fsm.Epoch(a.num("epoch", uint64(p.Epoch))), To: fsm.WorkerID(a.str("to", "")), Reason: r,
		}}}
	case "activate":
		p := e.part(a)
		w := fsm.WorkerID(a.str("worker", string(p.Owner)))
		body = fsm.Activate{Worker: w, Incarnation: e.inc(a, w), Items: []fsm.ActivateItem{{
			Partition: p.ID, Epoch: fsm.Epoch(a.num("epoch", uint64(p.Epoch))),
		}}}
	case "abort":
		p := e.part(a)
		body = fsm.Abort{Items: []fsm.AbortItem{{
			Handoff: fsm.HandoffID(a.num("handoff", uint64(p.Handoff))), Partition: p.ID, Reason: a.str("reason", ""),
		}}}
	case "release":
		p := e.part(a)
		w := fsm.WorkerID(a.str("worker", string(p.Owner)))
		body = fsm.Release{Worker: w, Incarnation: e.inc(a, w), Items: []fsm.ReleaseItem{{
			Partition: p.ID, Epoch: fsm.Epoch(a.num("epoch", uint64(p.Epoch))), ThroughSeq: fsm.StreamSeq(a.num("through", 0)),
		}}}
	case "checkpoint":
		w := fsm.WorkerID(a.pos(0))
		c := fsm.Checkpoint{Worker: w, Incarnation: e.inc(a, w)}
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			id := fsm.PartitionID(f[0])
			pi, _ := e.State.PartitionView(id)
			it := fsm.CheckpointItem{Partition: id, Epoch: pi.Epoch, Seq: fsm.StreamSeq(atoi(t, d, f[1]))}
			if len(f) > 2 && strings.HasPrefix(f[2], "epoch=") {
				it.Epoch = fsm.Epoch(atoi(t, d, strings.TrimPrefix(f[2], "epoch=")))
			}
			c.Items = append(c.Items, it)
		}
		body = c
	case "cordon":
		body = fsm.Cordon{Worker: fsm.WorkerID(a.pos(0)), On: !a.has("off")}
	case "pin":
		body = fsm.Pin{Partition: fsm.PartitionID(a.pos(0)), Worker: fsm.WorkerID(a.pos(1))}
	case "register-node":
		body = fsm.RegisterNode{Node: a.pos(0), APIAddr: a.str("addr", "")}
	case "remove-node":
		body = fsm.RemoveNode{Node: a.pos(0)}
	case "pause", "resume":
		body = fsm.SetRebalance{Paused: d.Cmd == "pause"}
	default:
		d.Fatalf(t, "unknown directive %q", d.Cmd)
	}
	res := e.Apply(fsm.Command{
		Header: fsm.Header{RequestID: a.str("id", ""), Actor: a.str("actor", "test"), Cause: a.str("cause", "")},
		Body:   body,
	})
	return FormatResult(res)
}

func (e *Env) part(a args) fsm.Partition {
	p, _ := e.State.PartitionView(fsm.PartitionID(a.pos(0)))
	if p.ID == "" {
		p.ID = fsm.PartitionID(a.pos(0))
	}
	return p.Partition
}

func (e *Env) inc(a args, w fsm.WorkerID) fsm.Incarnation {
	return fsm.Incarnation(a.num("inc", uint64(e.Incarnation(w))))
}

// time parses a scenario time such as "5s" into nanoseconds.
func time(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	var mult int64 = 1
	switch {
	case strings.HasSuffix(s, "ms"):
		mult, s = 1_000_000, strings.TrimSuffix(s, "ms")
	case strings.HasSuffix(s, "s"):
		mult, s = 1_000_000_000, strings.TrimSuffix(s, "s")
	case strings.HasSuffix(s, "m"):
		mult, s = 60_000_000_000, strings.TrimSuffix(s, "m")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return n * mult, nil
}

func atoi(t *testing.T, d *datadriven.TestData, s string) uint64 {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		d.Fatalf(t, "bad number %q", s)
	}
	return n
}

// args reads a directive's arguments: positional words and key=value pairs.
type args struct{ d *datadriven.TestData }

func (a args) positional() []string {
	var out []string
	for _, c := range a.d.CmdArgs {
		if len(c.Vals) == 0 && c.Key != "replace" && c.Key != "off" {
			out = append(out, c.Key)
		}
	}
	return out
}

func (a args) pos(i int) string {
	p := a.positional()
	if i < len(p) {
		return p[i]
	}
	return ""
}

func (a args) has(key string) bool {
	for _, c := range a.d.CmdArgs {
		if c.Key == key {
			return true
		}
	}
	return false
}

func (a args) str(key, def string) string {
	for _, c := range a.d.CmdArgs {
		if c.Key == key {
			if len(c.Vals) == 0 {
				return ""
			}
			return c.Vals[0]
		}
	}
	return def
}

func (a args) all(key string) []string {
	var out []string
	for _, c := range a.d.CmdArgs {
		if c.Key == key {
			out = append(out, c.Vals...)
		}
	}
	return out
}

func (a args) num(key string, def uint64) uint64 {
	s := a.str(key, "")
	if s == "" {
		return def
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("bad number %s=%q", key, s))
	}
	return n
}
