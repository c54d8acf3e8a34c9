package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/batonhq/baton/fsm"
)

// FuzzEvent_JSON: whatever JSON decodes as an audit event (a client reads
// them from any node it is pointed at) encodes again, and that encoding is
// stable: decoded and encoded once more it gives the same bytes (an empty
// list and an absent one are the same event); nothing panics.
func FuzzEvent_JSON(f *testing.F) {
	for _, b := range []fsm.EventBody{
		fsm.WorkerJoined{Worker: "w1", Incarnation: 3, Labels: []fsm.Label{{Key: "zone", Value: "a"}}},
		fsm.Committed{Handoff: 4, Partition: "p1", From: "w1", To: "w2", Epoch: 2, Forced: true, ForceReason: fsm.ForceOwnerLeft},
		fsm.PartitionsDeclared{Partitions: []fsm.PartitionSpec{{ID: "p1", Subjects: []string{"a.>"}, Weight: 1}}},
		fsm.EntryRejected{Command: fsm.CmdJoin, Code: fsm.CodeInvalidArgument, Reason: "worker: too long"},
	} {
		raw, err := json.Marshal(Event{fsm.Event{Meta: fsm.Meta{Index: 7, Time: 1}, Body: b}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"type":"Claimed","partition":"p1","epoch":-1}`))
	f.Add([]byte(`{"type":"Nope"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return
		}
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("a decoded event does not encode: %v", err)
		}
		var back Event
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("re-decode: %v (%s)", err, raw)
		}
		again, err := json.Marshal(back)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(raw, again) {
			t.Fatalf("unstable encoding:\n%s\n%s", raw, again)
		}
		if back.Type() != ev.Type() || !reflect.DeepEqual(back.Meta, ev.Meta) {
			t.Fatalf("round trip changed the type or meta: %#v vs %#v", back, ev)
		}
	})
}
