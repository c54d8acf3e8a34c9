package delivery

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton/fsm"
)

// Handling is one handling of one message as `baton worker --record` writes
// it: the record, when the handler was entered and returned (wall clock: the
// tests that read these run every process on one machine), and whether its
// context was already cancelled when it returned (the applier cancels a
// running handler when the worker loses the partition or its lease).
type Handling struct {
	Record
	Start, End time.Time
	Cancelled  bool
}

// Line is h as one --record line: "partition seq epoch start end cancelled",
// start and end in Unix nanoseconds, cancelled 0 or 1. The first three fields
// are what readers of the older format expect.
func (h Handling) Line() string {
	c := 0
	if h.Cancelled {
		c = 1
	}
	return fmt.Sprintf("%s %d %d %d %d %d\n", h.Partition, h.Seq, h.Epoch, h.Start.UnixNano(), h.End.UnixNano(), c)
}

// ParseLine reads one --record line (without its newline). Worker is not part
// of the line: the caller knows whose file it read.
func ParseLine(line string) (Handling, error) {
	f := strings.Fields(line)
	if len(f) != 6 {
		return Handling{}, fmt.Errorf("record line %q: %d fields, want 6", line, len(f))
	}
	seq, err1 := strconv.ParseUint(f[1], 10, 64)
	epoch, err2 := strconv.ParseUint(f[2], 10, 64)
	start, err3 := strconv.ParseInt(f[3], 10, 64)
	end, err4 := strconv.ParseInt(f[4], 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Handling{}, fmt.Errorf("record line %q: %w", line, err)
	}
	if f[5] != "0" && f[5] != "1" {
		return Handling{}, fmt.Errorf("record line %q: cancelled is %q, want 0 or 1", line, f[5])
	}
	cancelled := f[5] == "1"
	if err := fsm.CheckPartitionID(fsm.PartitionID(f[0])); err != nil {
		return Handling{}, fmt.Errorf("record line %q: %w", line, err)
	}
	return Handling{
		Record: Record{Partition: fsm.PartitionID(f[0]), Seq: fsm.StreamSeq(seq), Epoch: fsm.Epoch(epoch)},
		Start:  time.Unix(0, start), End: time.Unix(0, end), Cancelled: cancelled,
	}, nil
}
