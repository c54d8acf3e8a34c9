package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/batonhq/baton/fsm"
)

// Values given on the command line that go to the server are checked here,
// against the state machine's own rules (fsm/limits.go), before anything is
// sent: the operator gets a usage error naming the flag or argument instead of
// a round trip, and nothing the state machine would refuse is proposed.

// usageFromCheck turns an fsm check's rejection into a usage error naming
// what was checked ("--to", "PARTITION").
func usageFromCheck(what string, err error) error {
	if err == nil {
		return nil
	}
	var re *fsm.RejectError
	if errors.As(err, &re) && re.Msg != "" {
		return usageErrorf("%s: %s", what, re.Msg)
	}
	return usageErrorf("%s: %v", what, err)
}

// workerArg checks a worker id given as what.
func workerArg(what, s string) (fsm.WorkerID, error) {
	id := fsm.WorkerID(s)
	return id, usageFromCheck(what, fsm.CheckWorkerID(id))
}

// partitionArg checks a partition id given as what.
func partitionArg(what, s string) (fsm.PartitionID, error) {
	id := fsm.PartitionID(s)
	return id, usageFromCheck(what, fsm.CheckPartitionID(id))
}

// optionalWorker and optionalPartition check a filter that may be empty.
func optionalWorker(what, s string) (fsm.WorkerID, error) {
	if s == "" {
		return "", nil
	}
	return workerArg(what, s)
}

func optionalPartition(what, s string) (fsm.PartitionID, error) {
	if s == "" {
		return "", nil
	}
	return partitionArg(what, s)
}

// reasonArg checks a reason the audit log will carry.
func reasonArg(what, s string) error {
	return checkText(what, s, fsm.MaxReasonLen)
}

// drainTimeoutMS checks an operator move's drain timeout and returns it in the
// API's milliseconds. 0 asks for the server's default; anything else must lie
// in fsm.CheckDrainTimeout's range and be at least 1ms, which the wire can
// carry (a shorter one would arrive as 0, the default).
func drainTimeoutMS(what string, d time.Duration) (int64, error) {
	if err := fsm.CheckDrainTimeout(d); err != nil {
		return 0, usageFromCheck(what, err)
	}
	if d > 0 && d < time.Millisecond {
		return 0, usageErrorf("%s %s: below 1ms, the API's resolution (0 asks for the server's default)", what, d)
	}
	return d.Milliseconds(), nil
}

// maxWeight is the largest worker or partition weight the state machine
// accepts. Every node runs with fsm.DefaultConfig(): `baton server` has no
// flag to change it.
func maxWeight() uint32 { return fsm.DefaultConfig().MaxWeight }

// weightUsage is the usage of a --weight flag.
func weightUsage(what string) string {
	return fmt.Sprintf("%s (1 is the default; 0 is refused rather than read as 1)", what)
}
