package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// TestE2E_OversizedFieldsCannotStopTheCluster is issue 8's report, against
// three real `baton server` processes: a request carrying a string field far
// beyond its limit (a 70,000-byte worker id once committed an entry that made
// every node panic on apply and on every restart) gets a 4xx with a stable
// code, whichever node it is sent to, and changes nothing. Afterwards every
// node still serves, a valid request still commits, and all three nodes,
// SIGKILLed at once and restarted, come back on their logs with identical
// audit logs.
func TestE2E_OversizedFieldsCannotStopTheCluster(t *testing.T) {
	needBinary(t)
	servers := startServers(t, 3)
	huge := strings.Repeat("w", 70_000)

	reg := post(t, servers[0].url+api.PathRegister, map[string]any{"worker": "w1"}, http.StatusOK)
	inc := reg["incarnation"]
	before := lastIndex(sameAudit(t, servers))

	workerPath := func(p string) string { return strings.Replace(p, "{id}", "w1", 1) }
	tests := []struct {
		name string
		path string
		body map[string]any
	}{
		{"register with a 70,000-byte worker id", api.PathRegister, map[string]any{"worker": huge}},
		{"register with a 70,000-byte label value", api.PathRegister, map[string]any{"worker": "w2", "labels": []map[string]string{{"key": "zone", "value": huge}}}},
		{"register with a label value holding ESC", api.PathRegister, map[string]any{"worker": "w2", "labels": []map[string]string{{"key": "zone", "value": "\x1b[2J"}}}},
		{"checkpoint of a 70,000-byte partition id", workerPath(api.PathCheckpoints), map[string]any{"incarnation": inc, "items": []map[string]any{{"partition": huge, "epoch": 1, "seq": 1}}}},
		{"drained report of a 70,000-byte partition id", workerPath(api.PathDrained), map[string]any{"incarnation": inc, "items": []map[string]any{{"handoff": 1, "partition": huge, "epoch": 1, "through_seq": 1}}}},
		{"released report of a 70,000-byte partition id", workerPath(api.PathReleased), map[string]any{"incarnation": inc, "items": []map[string]any{{"partition": huge, "epoch": 1, "through_seq": 1}}}},
		{"activated report of a 70,000-byte partition id", workerPath(api.PathActivated), map[string]any{"incarnation": inc, "items": []map[string]any{{"partition": huge, "epoch": 1}}}},
		{"declare of a 70,000-byte subject", api.PathPartitions, map[string]any{"partitions": []map[string]any{{"id": "p1", "subjects": []string{huge}}}}},
	}
	for _, tt := range tests {
		for _, s := range servers { // the leader and the followers that forward
			t.Run(tt.name+"/via "+s.id, func(t *testing.T) {
				got := post(t, s.url+tt.path, tt.body, http.StatusBadRequest)
				if got["code"] != string(fsm.CodeInvalidArgument) && got["code"] != api.CodeBadRequest {
					t.Fatalf("code %v, want invalid_argument or bad_request", got["code"])
				}
			})
		}
	}

	evs := sameAudit(t, servers)
	if last := lastIndex(evs); last != before {
		t.Fatalf("refused requests reached the log: last event at %d, was %d", last, before)
	}
	post(t, servers[1].url+api.PathRegister, map[string]any{"worker": "w2"}, http.StatusOK)

	for _, s := range servers {
		s.crash()
	}
	for _, s := range servers {
		s.restart()
	}
	waitReady(t, servers, 3)
	post(t, servers[2].url+api.PathRegister, map[string]any{"worker": "w3"}, http.StatusOK)
	evs = sameAudit(t, servers)
	for _, ev := range evs {
		if ev.Type() == fsm.EvEntryRejected {
			t.Fatalf("an entry was refused on apply: %s", ev)
		}
	}
}

// post sends body as JSON and requires the status; it returns the response
// object, or for an error response its "error" object.
func post(t *testing.T, url string, body any, status int) map[string]any {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("POST %s: status %d, want %d: %s", url, resp.StatusCode, status, clip(raw))
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST %s: %v: %s", url, err, clip(raw))
	}
	if e, ok := out["error"].(map[string]any); ok {
		if len(raw) > 4096 {
			t.Fatalf("error response of %d bytes echoes the oversized input", len(raw))
		}
		return e
	}
	return out
}

func clip(b []byte) string {
	if len(b) > 300 {
		return fmt.Sprintf("%s… (%d bytes)", b[:300], len(b))
	}
	return string(b)
}
