package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// TestWrites_RetriedWithSameRequestID: every write sent twice with one
// request id (a client retrying after a lost answer) is applied once; the
// second answer is the first's index, marked duplicate.
func TestWrites_RetriedWithSameRequestID(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	hc := httpClient(t)
	cl, err := client.New(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := t.Context()
	r1, err := cl.Register(ctx, api.RegisterRequest{Worker: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Register(ctx, api.RegisterRequest{Worker: "w2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Declare(ctx, []fsm.PartitionSpec{{ID: "p1", Subjects: []string{"a.>"}}, {ID: "p2", Subjects: []string{"b.>"}}}); err != nil {
		t.Fatal(err)
	}
	c.MustApply(t, fsm.Command{Body: fsm.Claim{Items: []fsm.ClaimItem{{Partition: "p1", Worker: "w1"}, {Partition: "p2", Worker: "w1"}}}})
	if _, err := cl.Activated(ctx, "w1", r1.Incarnation, []fsm.ActivateItem{{Partition: "p1", Epoch: 1}, {Partition: "p2", Epoch: 1}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, method, path, body string }{
		{"register", "POST", "/v1/workers/register", `{"worker":"w3"}`},
		{"cordon", "POST", "/v1/workers/w2/cordon", `{"on":true}`},
		{"uncordon", "POST", "/v1/workers/w2/cordon", `{"on":false}`},
		{"checkpoint", "POST", "/v1/workers/w1/checkpoints", `{"incarnation":` + jsonOf(t, r1.Incarnation) + `,"items":[{"partition":"p1","epoch":1,"seq":4}]}`},
		// A move is built from the state when it arrives (the epoch, and a
		// deadline from the clock), so its retry is not byte-identical.
		{"move", "POST", "/v1/partitions/p1/move", `{"to":"w2"}`},
		{"forced move", "POST", "/v1/partitions/p2/move", `{"to":"w2","force":true}`},
		{"pin", "POST", "/v1/partitions/p1/pin", `{"worker":"w1"}`},
		{"pause", "POST", "/v1/rebalance", `{"paused":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{api.HeaderRequestID: "retry-" + strings.ReplaceAll(tc.name, " ", "-")}
			events := capture(t, c).events
			var first, again api.WriteResponse
			resp := do(t, hc, tc.method, c.Leader(t).URL+tc.path, tc.body, "", hdr)
			if resp.status != http.StatusOK {
				t.Fatalf("first: %d %s", resp.status, resp.body)
			}
			afterFirst := capture(t, c)
			if afterFirst.events == events {
				t.Fatalf("first %s appended no event", tc.name)
			}
			_ = json.Unmarshal(resp.body, &first)
			// The retry goes to a follower: the dedupe is the replicated
			// state's, not the node's.
			resp = do(t, hc, tc.method, c.Followers(t)[0].URL+tc.path, tc.body, "", hdr)
			if resp.status != http.StatusOK {
				t.Fatalf("retry: %d %s", resp.status, resp.body)
			}
			_ = json.Unmarshal(resp.body, &again)
			// A registration's answer has no duplicate flag; its index is
			// the incarnation, and must be the first's.
			if again.Index != first.Index || (tc.name != "register" && !again.Duplicate) {
				t.Fatalf("retry answered %+v, want index %d marked duplicate", again, first.Index)
			}
			unchanged(t, afterFirst, capture(t, c), false)
		})
	}
}

func jsonOf(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRequestID_ReusedForAnotherRequestIsRefused: a request id names one
// request. Sent again with another request (another verb, another target, the
// opposite setting) it is 409 request_id_reused and nothing changes, also
// for a move, whose command is built from the state when it arrives; the same
// request spelled differently is a retry and gets the first answer.
func TestRequestID_ReusedForAnotherRequestIsRefused(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	hc := httpClient(t)
	cl, err := client.New(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := t.Context()
	for _, w := range []fsm.WorkerID{"w1", "w2", "w3"} {
		if _, err := cl.Register(ctx, api.RegisterRequest{Worker: w}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.Declare(ctx, []fsm.PartitionSpec{{ID: "p1", Subjects: []string{"a.>"}}, {ID: "p2", Subjects: []string{"b.>"}}}); err != nil {
		t.Fatal(err)
	}
	c.MustApply(t, fsm.Command{Body: fsm.Claim{Items: []fsm.ClaimItem{{Partition: "p1", Worker: "w1"}, {Partition: "p2", Worker: "w1"}}}})
	leader := c.Leader(t).URL
	for _, tc := range []struct {
		name          string
		first, second [3]string // method, path, body
		status        int
	}{
		{"forced move reusing a pin's id",
			[3]string{"POST", "/v1/partitions/p1/pin", `{"worker":"w1"}`},
			[3]string{"POST", "/v1/partitions/p1/move", `{"to":"w2","force":true}`}, http.StatusConflict},
		{"move reusing a move's id with another target",
			[3]string{"POST", "/v1/partitions/p2/move", `{"to":"w2","force":true}`},
			[3]string{"POST", "/v1/partitions/p2/move", `{"to":"w3","force":true}`}, http.StatusConflict},
		{"uncordon reusing a cordon's id",
			[3]string{"POST", "/v1/workers/w3/cordon", `{"on":true}`},
			[3]string{"POST", "/v1/workers/w3/cordon", `{"on":false}`}, http.StatusConflict},
		{"the same request spelled differently",
			[3]string{"POST", "/v1/rebalance", `{"paused":true}`},
			[3]string{"POST", "/v1/rebalance", "{ \"paused\" :\ttrue }"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{api.HeaderRequestID: "id-" + strings.ReplaceAll(tc.name, " ", "-")}
			resp := do(t, hc, tc.first[0], leader+tc.first[1], tc.first[2], "", hdr)
			if resp.status != http.StatusOK {
				t.Fatalf("first: %d %s", resp.status, resp.body)
			}
			before := capture(t, c)
			resp = do(t, hc, tc.second[0], c.Followers(t)[0].URL+tc.second[1], tc.second[2], "", hdr)
			if resp.status != tc.status {
				t.Fatalf("second: %d %s, want %d", resp.status, resp.body, tc.status)
			}
			if tc.status == http.StatusConflict && !strings.Contains(string(resp.body), string(fsm.CodeRequestIDReused)) {
				t.Fatalf("second: %s, want code %s", resp.body, fsm.CodeRequestIDReused)
			}
			unchanged(t, before, capture(t, c), false)
		})
	}
}

// TestLimits_LongestValidIDsAreAccepted: ids at their documented maximum
// (128 bytes) work everywhere, also inside the actor and cause the server
// builds from them.
func TestLimits_LongestValidIDsAreAccepted(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	cl, err := client.New(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := t.Context()
	long := fsm.WorkerID(strings.Repeat("w", fsm.MaxIDLen))
	other := fsm.WorkerID(strings.Repeat("v", 121))
	part := fsm.PartitionID(strings.Repeat("p", fsm.MaxIDLen))
	for _, w := range []fsm.WorkerID{long, other} {
		if _, err := cl.Register(ctx, api.RegisterRequest{Worker: w}); err != nil {
			t.Fatalf("register a %d-byte worker id: %v", len(w), err)
		}
	}
	if _, err := cl.Declare(ctx, []fsm.PartitionSpec{{ID: part, Subjects: []string{"long.>"}}}); err != nil {
		t.Fatal(err)
	}
	c.MustApply(t, fsm.Command{Body: fsm.Claim{Items: []fsm.ClaimItem{{Partition: part, Worker: long}}}})
	if _, err := cl.Move(ctx, part, api.MoveRequest{To: other, Force: true}); err != nil {
		t.Fatalf("forced move of a 128-byte partition to a 121-byte worker: %v", err)
	}
}
