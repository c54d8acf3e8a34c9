package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/batonhq/baton/api"
)

// FuzzPlanOutput: whatever a node answers to GET /v1/plan that decodes as an
// api.Plan (the client's decoding), what `baton plan` prints for a person
// holds no control character a terminal would obey (C0 but newline and tab,
// DEL, C1) and is valid UTF-8, and what `baton plan --json` prints is such
// JSON too and decodes to the same plan.
func FuzzPlanOutput(f *testing.F) {
	f.Add([]byte(`{"index":7,"paused":false,"imbalance":0.5,"rendered":"move p1 from w1 to w2\n"}`))
	f.Add([]byte(`{"index":7,"rendered":"\u001b[2J\u009b31m","warnings":["\u001b]0;title\u0007"]}`))
	f.Add([]byte(`{"moves":[{"partition":"p\u001b1","from":"w1","to":"w2","reason":"\u202e"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d api.Plan
		if err := json.Unmarshal(data, &d); err != nil {
			return // the client refuses it
		}
		var out bytes.Buffer
		printPlan(clientFlags{out: &out}, d)
		checkTerminalSafe(t, out.Bytes())
		out.Reset()
		if err := (&clientFlags{out: &out}).printJSON(d); err != nil {
			t.Fatalf("--json: %v", err)
		}
		checkTerminalSafe(t, out.Bytes())
		var back api.Plan
		if err := json.Unmarshal(out.Bytes(), &back); err != nil {
			t.Fatalf("--json printed what does not decode: %v\n%s", err, out.Bytes())
		}
		if !reflect.DeepEqual(normalPlan(back), normalPlan(d)) {
			t.Fatalf("--json changed the plan:\n%+v\n%+v", back, d)
		}
	})
}

func checkTerminalSafe(t *testing.T, b []byte) {
	t.Helper()
	if !utf8.Valid(b) {
		t.Fatalf("invalid UTF-8 reaches the terminal: %q", b)
	}
	for _, r := range string(b) {
		if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r < 0xa0) {
			t.Fatalf("control character %U reaches the terminal: %q", r, b)
		}
	}
}

// normalPlan makes an empty list and an absent one the same (the encoding
// omits an empty pending list and warnings).
func normalPlan(p api.Plan) api.Plan {
	if len(p.Pending) == 0 {
		p.Pending = nil
	}
	if len(p.Warnings) == 0 {
		p.Warnings = nil
	}
	return p
}
