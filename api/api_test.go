package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"

	"github.com/batonhq/baton/fsm"
)

// TestEveryCodeHasAStatus: every state machine code maps to a 4xx, and every
// code survives the trip through JSON with errors.Is intact.
func TestEveryCodeHasAStatus(t *testing.T) {
	for _, c := range fsm.Codes() {
		t.Run(string(c), func(t *testing.T) {
			s, ok := statuses[string(c)]
			if !ok {
				t.Fatalf("no HTTP status for %s", c)
			}
			if s < 400 || s >= 500 {
				t.Fatalf("%s maps to %d, want a 4xx", c, s)
			}
			raw, err := json.Marshal(ErrorBody{Error: FromReject(&fsm.RejectError{Code: c, Msg: "m"})})
			if err != nil {
				t.Fatal(err)
			}
			var back ErrorBody
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatal(err)
			}
			if !errors.Is(back.Error, &fsm.RejectError{Code: c}) {
				t.Fatalf("decoded %v does not match %s", back.Error, c)
			}
			if r := back.Error.Reject(); r == nil || r.Code != c {
				t.Fatalf("Reject() = %v", r)
			}
		})
	}
	for _, c := range Codes() {
		if StatusOf(c) == http.StatusInternalServerError && c != CodeInternal {
			t.Errorf("code %s maps to 500", c)
		}
	}
}

func TestEvent_JSONRoundTripEveryType(t *testing.T) {
	bodies := []fsm.EventBody{
		fsm.WorkerJoined{Worker: "w1", Incarnation: 3, Weight: 2, Labels: []fsm.Label{{Key: "zone", Value: "a"}}},
		fsm.LeaveStarted{Worker: "w1", Incarnation: 3},
		fsm.WorkerLeft{Worker: "w1", Incarnation: 3, Reason: fsm.LeftExpired},
		fsm.WorkerCordoned{Worker: "w1", On: true},
		fsm.PartitionsDeclared{Partitions: []fsm.PartitionSpec{{ID: "p1", Subjects: []string{"a.>"}, Weight: 1}}},
		fsm.PartitionRemoved{Partition: "p1", Owner: "w1", Epoch: 2},
		fsm.Claimed{Partition: "p1", Worker: "w1", Epoch: 1, ResumeAfter: 9},
		fsm.Prepared{Handoff: 4, Partition: "p1", From: "w1", To: "w2", Epoch: 1, Reason: "rebalance", Deadline: 99},
		fsm.Drained{Handoff: 4, Partition: "p1", From: "w1", Epoch: 1, ThroughSeq: 12},
		fsm.Committed{Handoff: 4, Partition: "p1", From: "w1", To: "w2", Epoch: 2, ResumeAfter: 12, Forced: true, ForceReason: fsm.ForceOwnerLeft},
		fsm.Activated{Partition: "p1", Worker: "w2", Epoch: 2},
		fsm.Aborted{Handoff: 4, Partition: "p1", From: "w1", To: "w2", Reason: "target_left"},
		fsm.Released{Partition: "p1", Worker: "w2", Epoch: 2, ThroughSeq: 14},
		fsm.Checkpointed{Partition: "p1", Worker: "w2", Epoch: 2, Seq: 13},
		fsm.PartitionPinned{Partition: "p1", Worker: "w2"},
		fsm.RebalanceSet{Paused: true},
		fsm.NodeRegistered{Node: "n1", APIAddr: "http://x"},
		fsm.NodeRemoved{Node: "n1"},
		fsm.EntryRejected{Command: fsm.CmdJoin, Code: fsm.CodeInvalidArgument, Reason: "worker: invalid worker id"},
	}
	if len(bodies) != len(fsm.EventTypes()) {
		t.Fatalf("%d samples for %d event types", len(bodies), len(fsm.EventTypes()))
	}
	for _, b := range bodies {
		ev := Event{fsm.Event{Meta: fsm.Meta{Index: 7, Seq: 1, Term: 2, Time: 1700000000123456789, Actor: "a", Cause: "c", RequestID: "r"}, Body: b}}
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("%s: %v", b.Type(), err)
		}
		var back Event
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("%s: %v (%s)", b.Type(), err, raw)
		}
		if !reflect.DeepEqual(back, ev) {
			t.Fatalf("%s round trip:\n got %#v\nwant %#v\njson %s", b.Type(), back, ev, raw)
		}
	}
}
