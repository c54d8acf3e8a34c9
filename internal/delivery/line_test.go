package delivery

import (
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/fsm"
)

// FuzzParseLine: a record line from a worker's file never panics the reader;
// a line it accepts reads the same once written back, and every handling a
// worker writes is read back as it was.
func FuzzParseLine(f *testing.F) {
	f.Add("p-01 17 3 1765000000000000000 1765000000000100000 0", "p-01", uint64(17), uint64(3), int64(1), int64(2), true)
	f.Add("p 1 1 0 0 1", "orders-17", uint64(1<<63), uint64(1), int64(-5), int64(0), false)
	f.Add("p 1 1 0 0 2", "", uint64(0), uint64(0), int64(0), int64(0), false)
	f.Add("p 1 1 0 0", "a b", uint64(1), uint64(1), int64(0), int64(0), false)
	f.Add("p +1 1 0 0 0", "p", uint64(1), uint64(1), int64(0), int64(0), false)
	f.Fuzz(func(t *testing.T, line, part string, seq, epoch uint64, start, end int64, cancelled bool) {
		if h, err := ParseLine(line); err == nil {
			again, err := ParseLine(strings.TrimSuffix(h.Line(), "\n"))
			if err != nil || again.Record != h.Record || !again.Start.Equal(h.Start) || !again.End.Equal(h.End) || again.Cancelled != h.Cancelled {
				t.Fatalf("accepted %q as %+v; written back as %q it reads %+v, %v", line, h, h.Line(), again, err)
			}
		}
		if fsm.CheckPartitionID(fsm.PartitionID(part)) != nil {
			return // a worker never handles (nor writes) a partition id the state machine refuses
		}
		h := Handling{Start: time.Unix(0, start), End: time.Unix(0, end), Cancelled: cancelled}
		h.Partition, h.Seq, h.Epoch = fsm.PartitionID(part), fsm.StreamSeq(seq), fsm.Epoch(epoch)
		back, err := ParseLine(strings.TrimSuffix(h.Line(), "\n"))
		if err != nil {
			t.Fatalf("wrote %+v as %q, cannot read it back: %v", h, h.Line(), err)
		}
		if back.Record != h.Record || !back.Start.Equal(h.Start) || !back.End.Equal(h.End) || back.Cancelled != h.Cancelled {
			t.Fatalf("wrote %+v, read back %+v", h, back)
		}
	})
}
