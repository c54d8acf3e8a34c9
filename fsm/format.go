package fsm

import (
	"fmt"
	"strings"
)

// String renders an event body as "Type key=value ...", the canonical one-line
// form used by scenario tests and `baton audit` tables.
func (e Event) String() string {
	if e.Body == nil {
		return "<nil>"
	}
	return FormatBody(e.Body)
}

// FormatBody renders an event body as "Type key=value ...".
func FormatBody(b EventBody) string {
	var sb strings.Builder
	sb.WriteString(b.Type().String())
	kv := func(k string, v any) { fmt.Fprintf(&sb, " %s=%v", k, v) }
	opt := func(k string, v string) {
		if v != "" {
			kv(k, v)
		}
	}
	switch b := b.(type) {
	case WorkerJoined:
		kv("worker", b.Worker)
		kv("incarnation", b.Incarnation)
		kv("weight", b.Weight)
		for _, l := range b.Labels {
			kv("label", l.Key+":"+l.Value)
		}
	case LeaveStarted:
		kv("worker", b.Worker)
		kv("incarnation", b.Incarnation)
	case WorkerLeft:
		kv("worker", b.Worker)
		kv("incarnation", b.Incarnation)
		kv("reason", b.Reason)
	case WorkerCordoned:
		kv("worker", b.Worker)
		kv("on", b.On)
	case PartitionsDeclared:
		for _, p := range b.Partitions {
			kv("partition", fmt.Sprintf("%s[%s w=%d start=%d]", p.ID, strings.Join(p.Subjects, ","), p.Weight, p.StartAfter))
		}
	case PartitionRemoved:
		kv("partition", b.Partition)
		opt("owner", string(b.Owner))
		kv("epoch", b.Epoch)
	case Claimed:
		kv("partition", b.Partition)
		kv("worker", b.Worker)
		kv("epoch", b.Epoch)
		kv("resume_after", b.ResumeAfter)
	case Prepared:
		kv("handoff", b.Handoff)
		kv("partition", b.Partition)
		kv("from", b.From)
		if b.To == "" {
			kv("to", "(release)")
		} else {
			kv("to", b.To)
		}
		kv("epoch", b.Epoch)
		opt("reason", b.Reason)
		if b.Deadline != 0 {
			kv("deadline", b.Deadline)
		}
	case Drained:
		kv("handoff", b.Handoff)
		kv("partition", b.Partition)
		kv("from", b.From)
		kv("epoch", b.Epoch)
		kv("through_seq", b.ThroughSeq)
	case Committed:
		kv("handoff", b.Handoff)
		kv("partition", b.Partition)
		kv("from", b.From)
		kv("to", b.To)
		kv("epoch", b.Epoch)
		kv("resume_after", b.ResumeAfter)
		if b.Forced {
			kv("forced", b.ForceReason)
		}
	case Activated:
		kv("partition", b.Partition)
		kv("worker", b.Worker)
		kv("epoch", b.Epoch)
		for _, l := range b.Lingerers {
			kv("lingerer", fmt.Sprintf("%s@%d", l.Worker, l.Incarnation))
		}
	case Aborted:
		kv("handoff", b.Handoff)
		kv("partition", b.Partition)
		kv("from", b.From)
		if b.To == "" {
			kv("to", "(release)")
		} else {
			kv("to", b.To)
		}
		opt("reason", b.Reason)
	case Released:
		kv("partition", b.Partition)
		kv("worker", b.Worker)
		kv("epoch", b.Epoch)
		kv("through_seq", b.ThroughSeq)
	case Checkpointed:
		kv("partition", b.Partition)
		kv("worker", b.Worker)
		kv("epoch", b.Epoch)
		kv("seq", b.Seq)
	case PartitionPinned:
		kv("partition", b.Partition)
		if b.Worker == "" {
			kv("worker", "(none)")
		} else {
			kv("worker", b.Worker)
		}
	case RebalanceSet:
		kv("paused", b.Paused)
	case NodeRegistered:
		kv("node", b.Node)
		kv("api_addr", b.APIAddr)
	case NodeRemoved:
		kv("node", b.Node)
	}
	return sb.String()
}

// String renders a partition's state on one line.
func (p Partition) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s", p.ID, p.Phase)
	if p.Owner != "" {
		fmt.Fprintf(&sb, " owner=%s", p.Owner)
	}
	fmt.Fprintf(&sb, " epoch=%d resume_after=%d checkpoint=%d", p.Epoch, p.ResumeAfter, p.Checkpoint)
	if p.Handoff != 0 {
		fmt.Fprintf(&sb, " handoff=%s", p.Handoff)
	}
	if p.Pinned != "" {
		fmt.Fprintf(&sb, " pinned=%s", p.Pinned)
	}
	return sb.String()
}

// String renders a worker's state on one line.
func (w Worker) String() string {
	s := fmt.Sprintf("%s %s incarnation=%d weight=%d", w.ID, w.State, w.Incarnation, w.Weight)
	if w.Cordoned {
		s += " cordoned"
	}
	return s
}
