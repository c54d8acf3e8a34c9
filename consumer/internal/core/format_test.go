package core_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/batonhq/baton/consumer/internal/core"
	"github.com/batonhq/baton/fsm"
)

// The canonical text of actions and status, shared by the scenario files and
// the property test's failure logs. Times are offsets from the scenario's
// start (t0), so that the text is the same on every run.

var noticeText = map[core.NoticeKind]string{
	core.NoticeFenced:         "fenced",
	core.NoticeUnfenced:       "unfenced",
	core.NoticeNewIncarnation: "new_incarnation",
	core.NoticeCaughtUp:       "caught_up",
	core.NoticeDrained:        "drained",
	core.NoticeActivated:      "activated",
	core.NoticeStuck:          "stuck",
	core.NoticeDuplicate:      "duplicate",
	core.NoticeStray:          "stray",
	core.NoticeRefused:        "refused",
	core.NoticeDrainTimeout:   "drain_timeout",
}

func formatDelivery(d *core.Delivery) string {
	s := fmt.Sprintf("%s#%d", d.Subject, d.Seq)
	if d.FromRead {
		s += "(read)"
	}
	return s
}

func formatAction(a core.Action) string {
	switch a := a.(type) {
	case core.Dispatch:
		return fmt.Sprintf("Dispatch %s@%d gen=%d %s success=%s dead=%s", a.Partition, a.Epoch, a.Gen, formatDelivery(a.Msg), a.Success, a.DeadLetter)
	case core.Cancel:
		return fmt.Sprintf("Cancel %s gen=%d", a.Partition, a.Gen)
	case core.Ack:
		return "Ack " + formatDelivery(a.Msg)
	case core.SetFilter:
		s := fmt.Sprintf("SetFilter v%d inc=%d [%s]", a.Version, a.Inc, strings.Join(a.Subjects, " "))
		if a.Urgent {
			s += " urgent"
		}
		if a.Verify {
			s += " verify"
		}
		return s
	case core.Read:
		return fmt.Sprintf("Read %s gen=%d [%s] after=%d limit=%d", a.Partition, a.Gen, strings.Join(a.Subjects, " "), a.After, a.Limit)
	case core.ReportDrained:
		items := make([]string, len(a.Items))
		for i, it := range a.Items {
			items[i] = fmt.Sprintf("%s@%d/%s through=%d", it.Partition, it.Epoch, it.Handoff, it.ThroughSeq)
		}
		return fmt.Sprintf("ReportDrained inc=%d %s", a.Inc, strings.Join(items, " "))
	case core.ReportActivated:
		items := make([]string, len(a.Items))
		for i, it := range a.Items {
			items[i] = fmt.Sprintf("%s@%d", it.Partition, it.Epoch)
		}
		return fmt.Sprintf("ReportActivated inc=%d %s", a.Inc, strings.Join(items, " "))
	case core.ReportCheckpoints:
		items := make([]string, len(a.Items))
		for i, it := range a.Items {
			items[i] = fmt.Sprintf("%s@%d=%d", it.Partition, it.Epoch, it.Seq)
		}
		return fmt.Sprintf("ReportCheckpoints inc=%d %s", a.Inc, strings.Join(items, " "))
	case core.Clean:
		return fmt.Sprintf("Clean %s@%d [%s] lingerers=%s", a.Partition, a.Epoch, strings.Join(a.Subjects, " "), formatLingerers(a.Lingerers))
	case core.Leave:
		return fmt.Sprintf("Leave inc=%d", a.Inc)
	case core.Finish:
		return fmt.Sprintf("Finish inc=%d", a.Inc)
	case core.Notice:
		s := "Notice " + noticeText[a.Kind]
		if a.Partition != "" {
			s += " " + string(a.Partition)
		}
		if a.Epoch != 0 {
			s += fmt.Sprintf("@%d", a.Epoch)
		}
		if a.Phase != 0 {
			s += " phase=" + a.Phase.String()
		}
		if a.Took != 0 {
			s += " took=" + a.Took.String()
		}
		if a.Err != nil {
			s += " err=" + a.Err.Error()
		}
		return s
	}
	return fmt.Sprintf("unknown action %T", a)
}

func formatLingerers(ls []fsm.Lingerer) string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = fmt.Sprintf("%s/%d", l.Worker, l.Incarnation)
		if l.Gone {
			out[i] += "/gone"
		}
	}
	return "(" + strings.Join(out, ",") + ")"
}

// formatAt renders an instant as its offset from t0 ("-" for the zero time).
func formatAt(t, t0 time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Sub(t0).String()
}

func formatStatus(s core.Status, t0 time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "inc=%d lease=%s", s.Inc, formatAt(s.Lease, t0))
	for _, f := range []struct {
		on   bool
		name string
	}{{s.Fenced, "fenced"}, {s.Leaving, "leaving"}, {s.Finished, "finished"}, {s.Reconciled, "reconciled"}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	fmt.Fprintf(&b, " running=%d catching_up=%d\n", s.Running, s.CatchingUp)
	for _, p := range s.Partitions {
		fmt.Fprintf(&b, "  %s@%d %s for=%s processed=%d", p.Partition, p.Epoch, p.Phase, p.Since, p.Processed)
		if p.Stuck {
			b.WriteString(" stuck")
		}
		b.WriteString("\n")
	}
	for _, e := range []struct {
		name string
		err  error
	}{{"filter_err", s.FilterErr}, {"refused", s.Refused}, {"mismatch", s.Mismatch}} {
		if e.err != nil {
			fmt.Fprintf(&b, "  %s: %v\n", e.name, e.err)
		}
	}
	return b.String()
}
