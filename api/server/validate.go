package server

import (
	"fmt"
	"net/url"
	"strconv"
	"time"
	"unicode"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/raftnode"
)

// Checks of decoded request bodies that need no state: ids, labels and ranges
// are refused here, with the state machine's own rules (fsm/limits.go), before
// anything is proposed. The state machine checks them again; these only make
// sure that nothing a request can carry reaches the log unchecked, and that the
// answer names the field.

// atField prefixes a rejection with the JSON path of the field it is about,
// keeping its code.
func atField(path string, err error) error {
	if err == nil {
		return nil
	}
	return &fsm.RejectError{Code: fsm.CodeInvalidArgument, Msg: path + ": " + rejectMsg(err)}
}

// noItems refuses an empty batch: it would change nothing, and is almost
// certainly a client bug.
func noItems(n int) error {
	if n == 0 {
		return api.Errorf(api.CodeBadRequest, "items: no items")
	}
	return nil
}

func checkRegister(req api.RegisterRequest) error {
	if err := fsm.CheckWorkerID(req.Worker); err != nil {
		return atField("worker", err)
	}
	for i, l := range req.Labels {
		if err := fsm.CheckLabel(l); err != nil {
			return atField(fmt.Sprintf("labels[%d]", i), err)
		}
	}
	return nil
}

// checkItems checks the partition ids of a worker's report.
func checkItems[T any](items []T, partition func(T) fsm.PartitionID) error {
	if err := noItems(len(items)); err != nil {
		return err
	}
	for i, it := range items {
		if err := fsm.CheckPartitionID(partition(it)); err != nil {
			return atField(fmt.Sprintf("items[%d].partition", i), err)
		}
	}
	return nil
}

func checkDrained(req api.DrainedRequest) error {
	return checkItems(req.Items, func(it fsm.DrainItem) fsm.PartitionID { return it.Partition })
}

func checkActivated(req api.ActivatedRequest) error {
	return checkItems(req.Items, func(it fsm.ActivateItem) fsm.PartitionID { return it.Partition })
}

func checkCheckpoints(req api.CheckpointsRequest) error {
	return checkItems(req.Items, func(it fsm.CheckpointItem) fsm.PartitionID { return it.Partition })
}

func checkReleased(req api.ReleasedRequest) error {
	return checkItems(req.Items, func(it fsm.ReleaseItem) fsm.PartitionID { return it.Partition })
}

func checkDeclare(req api.DeclareRequest) error {
	if len(req.Partitions) == 0 {
		return api.Errorf(api.CodeBadRequest, "partitions: no partitions to declare")
	}
	for i, p := range req.Partitions {
		if err := fsm.CheckPartitionID(p.ID); err != nil {
			return atField(fmt.Sprintf("partitions[%d].id", i), err)
		}
		for j, sub := range p.Subjects {
			if sub == "" || len(sub) > fsm.MaxSubjectLen {
				return atField(fmt.Sprintf("partitions[%d].subjects[%d]", i, j),
					fmt.Errorf("a subject is 1 to %d bytes", fsm.MaxSubjectLen))
			}
		}
	}
	return nil
}

func checkRemovePartitions(req api.RemovePartitionsRequest) error {
	if len(req.Partitions) == 0 {
		return api.Errorf(api.CodeBadRequest, "partitions: no partitions to remove")
	}
	for i, p := range req.Partitions {
		if err := fsm.CheckPartitionID(p); err != nil {
			return atField(fmt.Sprintf("partitions[%d]", i), err)
		}
	}
	return nil
}

// checkMove checks a move and returns its drain timeout: the request's, or
// def when it gives none (0). The range is checked on the milliseconds before
// they are multiplied, so that no value can overflow into another one.
func checkMove(req api.MoveRequest, def time.Duration) (time.Duration, error) {
	if err := fsm.CheckWorkerID(req.To); err != nil {
		return 0, atField("to", err)
	}
	if err := checkReason(req.Reason); err != nil {
		return 0, atField("reason", err)
	}
	ms := req.DrainTimeoutMS
	if ms == 0 {
		return def, nil
	}
	if ms < 0 || ms > fsm.MaxDrainTimeout.Milliseconds() {
		return 0, atField("drain_timeout_ms", fmt.Errorf("%d out of range 1 to %d (%s); omit it for the server's default",
			ms, fsm.MaxDrainTimeout.Milliseconds(), fsm.MaxDrainTimeout))
	}
	d := time.Duration(ms) * time.Millisecond
	if err := fsm.CheckDrainTimeout(d); err != nil {
		return 0, atField("drain_timeout_ms", err)
	}
	return d, nil
}

// checkReason refuses a reason longer than the state machine keeps, or one
// holding control characters, which would reach operators' terminals through
// 'baton audit'.
func checkReason(r string) error {
	if len(r) > fsm.MaxReasonLen {
		return fmt.Errorf("longer than %d bytes", fsm.MaxReasonLen)
	}
	for _, c := range r {
		if unicode.IsControl(c) {
			return fmt.Errorf("holds control characters")
		}
	}
	return nil
}

func checkPin(req api.PinRequest) error {
	if req.Worker == "" {
		return nil // unpin
	}
	return atField("worker", fsm.CheckWorkerID(req.Worker))
}

// checkJoin checks a join before anything touches raft: the node id and the
// raft address as raftnode checks them, and the API address as a base URL
// other nodes can forward to.
func checkJoin(req api.JoinRequest) error {
	if err := raftnode.CheckJoin(req.ID, req.RaftAddr, req.APIAddr); err != nil {
		return err
	}
	u, err := url.Parse(req.APIAddr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return atField("api_addr", fmt.Errorf("%q: want http(s)://host:port", clip(req.APIAddr)))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return atField("api_addr", fmt.Errorf("%q: port must be 1 to 65535", clip(req.APIAddr)))
		}
	}
	return nil
}

func checkRemoveNode(req api.RemoveRequest) error {
	return atField("id", fsm.CheckNodeID(req.ID))
}
