package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// TestMove_DrainTimeout: a graceful move's handoff deadline is the command's
// time plus drain_timeout_ms, from 1 ms to fsm.MaxDrainTimeout, and the
// server's default when it is 0 or omitted. (Out-of-range values are refused:
// fieldCases and strictCases.)
func TestMove_DrainTimeout(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
	defer cancel()
	cl, err := client.New(f.c.URLs(), client.WithToken(opToken))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// p3 (unassigned) and three more partitions, claimed by w1 and active.
	res, err := cl.Declare(ctx, []fsm.PartitionSpec{{ID: "p5", Subjects: []string{"s.p5"}}, {ID: "p6", Subjects: []string{"s.p6"}}})
	if err != nil || client.ItemErrors(res) != nil {
		t.Fatalf("declare: %v %v", err, client.ItemErrors(res))
	}
	f.c.MustApply(t, fsm.Command{Header: fsm.Header{Actor: "test"}, Body: fsm.Claim{Items: []fsm.ClaimItem{
		{Partition: "p3", Worker: "w1"}, {Partition: "p5", Worker: "w1"}, {Partition: "p6", Worker: "w1"},
	}}})
	res, err = cl.Activated(ctx, "w1", f.inc1, []fsm.ActivateItem{{Partition: "p3", Epoch: 1}, {Partition: "p5", Epoch: 1}, {Partition: "p6", Epoch: 1}})
	if err != nil || client.ItemErrors(res) != nil {
		t.Fatalf("activate: %v %v", err, client.ItemErrors(res))
	}
	const def = 30 * time.Second // the server's default (Config.DrainTimeout)
	tests := []struct {
		partition string
		body      string
		want      time.Duration
	}{
		{"p4", `{"to":"w2","drain_timeout_ms":86400000}`, fsm.MaxDrainTimeout},
		{"p3", `{"to":"w2"}`, def},
		{"p5", `{"to":"w2","drain_timeout_ms":0}`, def},
		{"p6", `{"to":"w2","drain_timeout_ms":1}`, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			resp := do(t, f.hc, "POST", f.followerURL(t)+"/v1/partitions/"+tt.partition+"/move", tt.body, opToken, nil)
			if resp.status != http.StatusOK {
				t.Fatalf("status %d: %s", resp.status, resp.body)
			}
			var wr api.WriteResponse
			if err := json.Unmarshal(resp.body, &wr); err != nil {
				t.Fatal(err)
			}
			for _, ev := range wr.Events {
				if p, ok := ev.Body.(fsm.Prepared); ok {
					if got := time.Duration(p.Deadline - ev.Time); got != tt.want {
						t.Fatalf("deadline %s after the command, want %s", got, tt.want)
					}
					return
				}
			}
			t.Fatalf("no Prepared event in %s", resp.body)
		})
	}
}
