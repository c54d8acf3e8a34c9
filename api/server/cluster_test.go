package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// members is the leader's raft configuration as "id@addr voter" strings.
func members(tb testing.TB, c *testcluster.Cluster) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
	defer cancel()
	st, err := c.Leader(tb).Raft().Status(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, m := range st.Members {
		out = append(out, fmt.Sprintf("%s@%s voter=%t", m.ID, m.RaftAddr, m.Voter))
	}
	slices.Sort(out)
	return out
}

// TestClusterMembership_RefusedChangesNothing: a join or remove the API
// refuses leaves the raft configuration of a real 3-node cluster as it was.
// A join with an invalid id used to add the voter and answer 400 after; a
// remove of it answered 400 but removed it; a remove of an unknown node
// answered 200 (docs: 404 unknown_node).
func TestClusterMembership_RefusedChangesNothing(t *testing.T) {
	f := newFixture(t)
	join := func(id, raftAddr, apiAddr string) string {
		b, err := json.Marshal(api.JoinRequest{ID: id, RaftAddr: raftAddr, APIAddr: apiAddr})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	invalid := string(fsm.CodeInvalidArgument)
	tests := []struct {
		name, path, body string
		status           int
		code, msg        string
	}{
		{"join with an id holding a space and '!'", "/v1/cluster/join", join("bad id!", "127.0.0.1:7999", "http://127.0.0.1:7998"), 400, invalid, "id: invalid node id"},
		{"join with a 300-byte id", "/v1/cluster/join", join(strings.Repeat("n", 300), "127.0.0.1:7999", "http://127.0.0.1:7998"), 400, invalid, "id: invalid node id"},
		{"join with an empty id", "/v1/cluster/join", join("", "127.0.0.1:7999", "http://127.0.0.1:7998"), 400, invalid, "id: invalid node id"},
		{"join with a control character in the id", "/v1/cluster/join", join("n\u001b9", "127.0.0.1:7999", "http://127.0.0.1:7998"), 400, invalid, "id"},
		{"join with port 0", "/v1/cluster/join", join("n9", "127.0.0.1:0", "http://127.0.0.1:7998"), 400, invalid, "raft_addr"},
		{"join with port 70000", "/v1/cluster/join", join("n9", "127.0.0.1:70000", "http://127.0.0.1:7998"), 400, invalid, "raft_addr"},
		{"join with a named port", "/v1/cluster/join", join("n9", "127.0.0.1:http", "http://127.0.0.1:7998"), 400, invalid, "raft_addr"},
		{"join without a host", "/v1/cluster/join", join("n9", ":7999", "http://127.0.0.1:7998"), 400, invalid, "raft_addr"},
		{"join without a port", "/v1/cluster/join", join("n9", "127.0.0.1", "http://127.0.0.1:7998"), 400, invalid, "raft_addr"},
		{"join with a long raft address", "/v1/cluster/join", join("n9", strings.Repeat("h", fsm.MaxAddrLen)+":1", "http://127.0.0.1:7998"), 400, invalid, "raft_addr"},
		{"join with a long API address", "/v1/cluster/join", join("n9", "127.0.0.1:7999", "http://"+strings.Repeat("h", fsm.MaxAddrLen)), 400, invalid, "api_addr"},
		{"join with an API address port 0", "/v1/cluster/join", join("n9", "127.0.0.1:7999", "http://127.0.0.1:0"), 400, invalid, "api_addr"},
		{"join with an API address with a query", "/v1/cluster/join", join("n9", "127.0.0.1:7999", "http://127.0.0.1:7998/?x=1"), 400, invalid, "api_addr"},
		{"join with an API address not http", "/v1/cluster/join", join("n9", "127.0.0.1:7999", "ftp://127.0.0.1:7998"), 400, invalid, "api_addr"},
		{"join without api_addr", "/v1/cluster/join", `{"id":"n9","raft_addr":"127.0.0.1:7999"}`, 400, api.CodeBadRequest, "api_addr: required"},
		{"join with a wrong-case key", "/v1/cluster/join", `{"ID":"n9","raft_addr":"127.0.0.1:7999","api_addr":"http://127.0.0.1:7998"}`, 400, api.CodeBadRequest, `"ID"`},
		{"remove an invalid id", "/v1/cluster/remove", `{"id":"bad id!"}`, 400, invalid, "id: invalid node id"},
		{"remove a 300-byte id", "/v1/cluster/remove", `{"id":"` + strings.Repeat("n", 300) + `"}`, 400, invalid, "id: invalid node id"},
		{"remove an unknown node", "/v1/cluster/remove", `{"id":"n9"}`, 404, string(fsm.CodeUnknownNode), "n9"},
		{"remove {}", "/v1/cluster/remove", `{}`, 400, api.CodeBadRequest, "id: required"},
	}
	for _, target := range []string{"leader", "follower"} {
		t.Run(target, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					base := f.leaderURL(t)
					if target == "follower" {
						base = f.followerURL(t)
					}
					beforeMembers, before := members(t, f.c), capture(t, f.c)
					resp := do(t, f.hc, "POST", base+tt.path, tt.body, opToken, nil)
					checkAnswer(t, badCase{status: tt.status, code: tt.code, msg: tt.msg}, resp)
					if after := members(t, f.c); !slices.Equal(beforeMembers, after) {
						t.Fatalf("raft configuration changed:\nbefore %v\nafter  %v", beforeMembers, after)
					}
					unchanged(t, before, capture(t, f.c), true)
				})
			}
		})
	}
}
