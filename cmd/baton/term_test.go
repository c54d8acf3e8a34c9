package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

func TestTermSafe(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain ASCII is left alone", "orders-7 w1 rebalance", "orders-7 w1 rebalance"},
		{"printable Unicode is left alone", "zone=eu-west → ü 東京", "zone=eu-west → ü 東京"},
		{"ESC", "\x1b[31mred", `"\x1b[31mred"`},
		{"other C0", "a\x07b\x00", `"a\ab\x00"`},
		{"tab and newline", "a\tb\nc", `"a\tb\nc"`},
		{"DEL", "a\x7f", `"a\x7f"`},
		{"C1 CSI", "a\u009b31m", `"a\u009b31m"`},
		{"bidi override", "abc\u202edcba", `"abc\u202edcba"`},
		{"invalid UTF-8", "a\xffb", `"a\xffb"`},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := termSafe(tt.in); got != tt.want {
				t.Errorf("termSafe(%q) = %s, want %s", tt.in, got, tt.want)
			}
			if got := termSafe(termSafe(tt.in)); got != termSafe(tt.in) {
				t.Errorf("termSafe is not idempotent on %q: %s", tt.in, got)
			}
		})
	}
	if got, want := termSafeLines("ok\n\x1b[2Jbad\nok"), "ok\n\"\\x1b[2Jbad\"\nok"; got != want {
		t.Errorf("termSafeLines = %q, want %q", got, want)
	}
}

// evil is a server-supplied string that would recolour the terminal.
const evil = "x\x1b[31m"

// evilEscaped is how it must print (quoted, alone or in a quoted line).
const evilEscaped = `x\x1b[31m`

// TestPrintersEscapeServerStrings prints server data holding ESC, C1 and
// newlines through every table and text printer: no control byte reaches the
// output, and the escaped form does.
func TestPrintersEscapeServerStrings(t *testing.T) {
	id := fsm.WorkerID(evil)
	part := fsm.PartitionID(evil)
	h := fsm.Handoff{ID: 3, Partition: part, From: id, To: id, Reason: evil, PreparedTime: time.Now().UnixNano()}
	ev := func(body fsm.EventBody) fsm.Event {
		return fsm.Event{Meta: fsm.Meta{Index: 9, Time: time.Now().UnixNano(), Actor: evil, Cause: evil, RequestID: evil}, Body: body}
	}
	tests := []struct {
		name  string
		print func(c clientFlags) error
	}{
		{"workers: a label value", func(c clientFlags) error {
			printWorkers(c, api.WorkerList{Workers: []fsm.Worker{{ID: "w1", Labels: []fsm.Label{{Key: "zone", Value: evil}}}}}, nil)
			return nil
		}},
		{"workers: a worker id and label key", func(c clientFlags) error {
			printWorkers(c, api.WorkerList{Workers: []fsm.Worker{{ID: id, Labels: []fsm.Label{{Key: evil, Value: "v"}}}}}, nil)
			return nil
		}},
		{"audit: an event's details and cause", func(c clientFlags) error {
			return newEventWriter(c.out, false).write(api.Event{Event: ev(fsm.Prepared{Handoff: 3, Partition: part, From: id, To: id, Reason: evil})})
		}},
		{"audit --timeline", func(c clientFlags) error {
			b := newTimelineBuilder()
			b.add(ev(fsm.Prepared{Handoff: 3, Partition: part, From: id, To: id, Reason: evil}))
			b.add(ev(fsm.Aborted{Handoff: 3, Partition: part, From: id, To: id, Reason: evil}))
			printTimelineTable(c, b.timelines())
			return nil
		}},
		{"status", func(c clientFlags) error {
			st := api.ClusterStatus{NodeID: evil, State: evil, LeaderID: evil, LeaderAPI: evil, NotReady: evil,
				Members: []api.Member{{ID: evil, RaftAddr: evil, APIAddr: evil}},
				Digests: []api.Digest{{Index: 3, Digest: evil}}, DigestChecked: 3,
				Divergence: []api.Divergence{{Node: evil, Index: 3, Digest: evil, Majority: evil},
					{Node: evil, Index: 3, Digest: evil, Digests: []api.NodeDigest{{Node: evil, Digest: evil}}}}}
			sum := fsm.Summary{Workers: map[fsm.WorkerState]int{fsm.WorkerActive: 1}}
			return printStatus(c, st, sum, nil)
		}},
		{"partitions list", func(c clientFlags) error {
			printPartitions(c, []fsm.PartitionInfo{{Partition: fsm.Partition{ID: part, Owner: id, Subjects: []string{evil}, Pinned: id}, PendingHandoff: &h}})
			return nil
		}},
		{"partitions get", func(c clientFlags) error {
			printPartition(c, fsm.PartitionInfo{Partition: fsm.Partition{ID: part, Owner: id, Subjects: []string{evil}, Pinned: id,
				Lingerers: []fsm.Lingerer{{Worker: id}}}, PendingHandoff: &h})
			return nil
		}},
		{"handoffs", func(c clientFlags) error {
			printHandoffs(c, api.HandoffList{Handoffs: []fsm.Handoff{h}})
			return nil
		}},
		{"plan", func(c clientFlags) error {
			printPlan(c, api.Plan{Rendered: "plan:\n  " + evil + "\n", Warnings: []string{evil},
				Actions: []api.PlanAction{{Partition: part, From: id, To: id, Action: evil, Reason: evil, Detail: evil},
					{Partition: part, Action: api.PlanHold, Reason: evil, Detail: evil}}})
			return nil
		}},
		{"a write's events", func(c clientFlags) error {
			return c.printWrite("move", api.WriteResponse{Index: 9, Events: []api.Event{{Event: ev(fsm.WorkerCordoned{Worker: id, On: true})}}}, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := tt.print(clientFlags{out: &out}); err != nil {
				t.Fatal(err)
			}
			if i := bytes.IndexFunc(out.Bytes(), func(r rune) bool { return r == 0x1b || r >= 0x80 && r < 0xa0 }); i >= 0 {
				t.Fatalf("a control character reached the output at byte %d:\n%q", i, out.String())
			}
			if !strings.Contains(out.String(), evilEscaped) {
				t.Errorf("output lacks %s:\n%s", evilEscaped, out.String())
			}
		})
	}
}

// TestJSONOutputEscapesControls checks --json output: encoding/json escapes
// C0 (ESC) itself; writeJSON also escapes DEL and C1, which encoding/json
// writes raw. The output still decodes to the same value.
func TestJSONOutputEscapesControls(t *testing.T) {
	in := api.WorkerList{Index: 4, Workers: []fsm.Worker{{ID: "w1", State: fsm.WorkerActive, Labels: []fsm.Label{{Key: "zone", Value: "\x1b[31m\u009b31m\x7f é →"}}}}}
	for _, indent := range []bool{true, false} {
		var out bytes.Buffer
		if err := writeJSON(&out, in, indent); err != nil {
			t.Fatal(err)
		}
		if bytes.ContainsAny(out.Bytes(), "\x1b\x7f") || bytes.Contains(out.Bytes(), []byte("\u009b")) {
			t.Fatalf("raw control characters in %q", out.String())
		}
		for _, want := range []string{`\u001b[31m`, `\u009b31m`, `\u007f`, "é →"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %s: %s", want, out.String())
			}
		}
		var back api.WorkerList
		if err := json.Unmarshal(out.Bytes(), &back); err != nil || !reflect.DeepEqual(back, in) {
			t.Errorf("round trip: %+v, %v", back, err)
		}
	}
}

// TestCheckText covers the check of text sent to the server from the
// command line.
func TestCheckText(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"planned maintenance", true},
		{"wartung für zone → b", true},
		{"x\x1b[31m", false},
		{"a\nb", false},
		{"a\u009b", false},
		{strings.Repeat("r", 128), true},
		{strings.Repeat("r", 129), false},
	} {
		err := checkText("--reason", tt.in, 128)
		var ee *exitError
		if tt.ok != (err == nil) || err != nil && (!errors.As(err, &ee) || ee.code != 2) {
			t.Errorf("checkText(%.20q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}
