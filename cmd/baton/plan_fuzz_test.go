package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/batonhq/baton/controller"
)

// FuzzPlanOutput: whatever a node answers to GET /v1/plan, what `baton plan`
// prints for a person holds no control character a terminal would obey (C0
// but newline and tab, DEL, C1) and is valid UTF-8, and `baton plan --json`
// prints JSON or refuses.
func FuzzPlanOutput(f *testing.F) {
	f.Add([]byte(`{"index":7,"paused":false,"imbalance":0.5,"rendered":"move p1 from w1 to w2\n"}`))
	f.Add([]byte(`{"index":7,"rendered":"\u001b[2J\u009b31m","warnings":["\u001b]0;title\u0007"]}`))
	f.Add([]byte(`{"moves":[{"partition":"p\u001b1","from":"w1","to":"w2","reason":"\u202e"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d controller.DryRun
		if err := json.Unmarshal(data, &d); err == nil {
			var out bytes.Buffer
			printPlan(clientFlags{out: &out}, d)
			checkTerminalSafe(t, out.Bytes())
		}
		var out bytes.Buffer
		if err := writeRawJSON(&out, data); err == nil && !json.Valid(out.Bytes()) {
			t.Fatalf("--json printed invalid JSON: %q", out.Bytes())
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
