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
	return formatWalk(b.Type().String(), func(w *walker) { b.walk(w) })
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
