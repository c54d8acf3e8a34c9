package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
)

// badCase is one bad request and what the server must answer.
type badCase struct {
	name   string
	method string
	path   string // with the query string
	body   string
	token  string // "" sends none; default opToken (see run)
	noAuth bool   // send no token at all
	// chunked sends the body without a Content-Length.
	chunked bool
	header  map[string]string
	status  int
	code    string
	// item: the request is accepted as a whole (200) and its first item is
	// rejected with code and status.
	item bool
	// viaRaft: the rejection comes from the state machine, so the command went
	// through raft: only the state's content must be unchanged, not its
	// applied index and request table.
	viaRaft bool
	// allow is the Allow header a 405 must carry.
	allow string
	// msg, if set, must appear in the error's message.
	msg string
}

// endpoint is one route of routes.go: the methods it accepts, the role each
// needs, and a body that would change the state if it were accepted (so that
// an auth bug shows up as a changed state).
type endpoint struct {
	path    string
	methods map[string]server.Role
	bodies  map[string]string
}

func endpoints(f *fixture) []endpoint {
	inc := fmt.Sprint(f.inc1)
	return []endpoint{
		{"/v1/workers/register", roles("POST", server.RoleWorker), bodies("POST", `{"worker":"w9"}`)},
		{"/v1/workers", roles("GET", server.RoleRead), nil},
		{"/v1/workers/w1", roles("GET", server.RoleRead, "DELETE", server.RoleOperator), nil},
		{"/v1/workers/w1/heartbeat", roles("POST", server.RoleWorker), bodies("POST", `{"incarnation":`+inc+`}`)},
		{"/v1/workers/w1/leave", roles("POST", server.RoleWorker), bodies("POST", `{"incarnation":`+inc+`}`)},
		{"/v1/workers/w1/assignment", roles("GET", server.RoleRead), nil},
		{"/v1/workers/w1/drained", roles("POST", server.RoleWorker),
			bodies("POST", fmt.Sprintf(`{"incarnation":%s,"items":[{"handoff":%d,"partition":"p1","epoch":1,"through_seq":5}]}`, inc, f.handoff))},
		{"/v1/workers/w1/activated", roles("POST", server.RoleWorker),
			bodies("POST", `{"incarnation":`+inc+`,"items":[{"partition":"p2","epoch":1}]}`)},
		{"/v1/workers/w1/checkpoints", roles("POST", server.RoleWorker),
			bodies("POST", `{"incarnation":`+inc+`,"items":[{"partition":"p4","epoch":1,"seq":7}]}`)},
		{"/v1/workers/w1/released", roles("POST", server.RoleWorker),
			bodies("POST", `{"incarnation":`+inc+`,"items":[{"partition":"p4","epoch":1,"through_seq":3}]}`)},
		{"/v1/workers/w1/cordon", roles("POST", server.RoleOperator), bodies("POST", `{"on":true}`)},
		{"/v1/partitions", roles("GET", server.RoleRead, "POST", server.RoleOperator, "DELETE", server.RoleOperator),
			bodies("POST", `{"partitions":[{"id":"p9","subjects":["s.p9.>"]}]}`, "DELETE", `{"partitions":["p3"]}`)},
		{"/v1/partitions/p3", roles("GET", server.RoleRead, "DELETE", server.RoleOperator), nil},
		{"/v1/partitions/p4/move", roles("POST", server.RoleOperator), bodies("POST", `{"to":"w2","force":true}`)},
		{"/v1/partitions/p4/pin", roles("POST", server.RoleOperator), bodies("POST", `{"worker":"w1"}`)},
		{"/v1/handoffs", roles("GET", server.RoleRead), nil},
		{"/v1/rebalance", roles("POST", server.RoleOperator), bodies("POST", `{"paused":true}`)},
		{"/v1/plan", roles("GET", server.RoleRead), nil},
		{"/v1/audit", roles("GET", server.RoleRead), nil},
		{"/v1/audit/follow", roles("GET", server.RoleRead), nil},
		{"/v1/cluster/status", roles("GET", server.RoleRead), nil},
		{"/v1/cluster/summary", roles("GET", server.RoleRead), nil},
		{"/v1/cluster/join", roles("POST", server.RoleOperator),
			bodies("POST", `{"id":"n9","raft_addr":"127.0.0.1:1","api_addr":"http://127.0.0.1:1"}`)},
		{"/v1/cluster/remove", roles("POST", server.RoleOperator), bodies("POST", `{"id":"n3"}`)},
	}
}

func roles(kv ...any) map[string]server.Role {
	m := map[string]server.Role{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(server.Role)
	}
	return m
}

func bodies(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// authCases: every endpoint refuses a missing or unknown token (401) and a
// role below the one it needs (403).
func authCases(f *fixture) []badCase {
	var out []badCase
	for _, ep := range endpoints(f) {
		for _, m := range sortedKeys(ep.methods) {
			need, body := ep.methods[m], ep.bodies[m]
			name := m + " " + ep.path
			out = append(out,
				badCase{name: name + "/no token", method: m, path: ep.path, body: body, noAuth: true, status: 401, code: api.CodeUnauthorized},
				badCase{name: name + "/not Bearer", method: m, path: ep.path, body: body, noAuth: true,
					header: map[string]string{"Authorization": "Basic " + opToken}, status: 401, code: api.CodeUnauthorized},
				badCase{name: name + "/unknown token", method: m, path: ep.path, body: body, token: bogusToken, status: 401, code: api.CodeUnauthorized},
			)
			if need > server.RoleRead {
				out = append(out, badCase{name: name + "/read token", method: m, path: ep.path, body: body, token: readToken,
					status: 403, code: api.CodeForbidden})
			}
			if need > server.RoleWorker {
				out = append(out, badCase{name: name + "/worker token", method: m, path: ep.path, body: body, token: workerToken,
					status: 403, code: api.CodeForbidden})
			}
		}
	}
	return out
}

// methodCases: a method an endpoint does not accept is 405 with Allow.
func methodCases(f *fixture) []badCase {
	var out []badCase
	for _, ep := range endpoints(f) {
		out = append(out, badCase{name: "PUT " + ep.path, method: "PUT", path: ep.path, body: `{}`,
			status: 405, code: api.CodeMethodNotAllowed, allow: strings.Join(sortedKeys(ep.methods), ", ")})
	}
	for _, p := range []string{api.PathMetrics, api.PathHealth, api.PathReady} {
		out = append(out, badCase{name: "POST " + p, method: "POST", path: p, body: `{}`,
			status: 405, code: api.CodeMethodNotAllowed, allow: "GET"})
	}
	return out
}

// bodyCases: every endpoint that reads a body refuses a bad one before
// anything reaches raft.
func bodyCases(f *fixture) []badCase {
	oversize := `{"worker":"` + strings.Repeat("w", maxBody) + `"}`
	bad := []struct{ name, body string }{
		{"malformed JSON", `{"worker":`},
		{"empty body", ``},
		{"whitespace only", " \n "},
		{"unknown field", `{"bogus":1}`},
		{"wrong type", `"hello"`},
		{"array", `[{}]`},
		{"trailing garbage", `{} x`},
		{"trailing brace", `{}}`},
		{"trailing bracket", `{}]`},
		{"two objects", `{}{}`},
	}
	var out []badCase
	for _, ep := range endpoints(f) {
		for _, m := range sortedKeys(ep.bodies) {
			for _, b := range bad {
				out = append(out, badCase{name: m + " " + ep.path + "/" + b.name, method: m, path: ep.path, body: b.body,
					status: 400, code: api.CodeBadRequest})
			}
			out = append(out,
				badCase{name: m + " " + ep.path + "/oversize body", method: m, path: ep.path, body: oversize,
					status: 413, code: api.CodeBodyTooLarge},
				badCase{name: m + " " + ep.path + "/oversize chunked body", method: m, path: ep.path, body: oversize,
					chunked: true, status: 413, code: api.CodeBodyTooLarge})
		}
	}
	return out
}

// queryCases: bad query parameters are refused up front.
func queryCases() []badCase {
	bad := func(path string) badCase {
		return badCase{name: "GET " + path, method: "GET", path: path, status: 400, code: api.CodeBadRequest}
	}
	out := []badCase{
		bad("/v1/workers/w1/assignment?index=abc"),
		bad("/v1/workers/w1/assignment?index=-1"),
		bad("/v1/workers/w1/assignment?index=1&wait=abc"),
		bad("/v1/workers/w1/assignment?index=1&wait=-5s"),
		bad("/v1/workers/w1/assignment?index=1&wait=0s"),
		bad("/v1/workers/w1/assignment?wait=forever"),
		bad("/v1/workers/w1/assignment?consistency=bogus"),
		bad("/v1/workers/w1/assignment?index=1&consistency=bogus"),
		bad("/v1/workers?consistency=bogus"),
		bad("/v1/workers/w1?consistency=bogus"),
		bad("/v1/partitions?limit=0"),
		bad("/v1/partitions?limit=1001"),
		bad("/v1/partitions?limit=ten"),
		bad("/v1/partitions?consistency=bogus"),
		bad("/v1/partitions/p4?consistency=bogus"),
		bad("/v1/handoffs?consistency=bogus"),
		bad("/v1/cluster/summary?consistency=bogus"),
	}
	for _, p := range []string{"/v1/audit", "/v1/audit/follow"} {
		out = append(out,
			bad(p+"?after=bogus"),
			bad(p+"?after=1.2.3.4"),
			bad(p+"?after=x.1"),
			bad(p+"?handoff=zz"),
			bad(p+"?handoff=h0"),
			bad(p+"?type=Bogus"),
			bad(p+"?type=Claimed,Nope"),
			bad(p+"?since=yesterday"),
			bad(p+"?until=soon"),
			bad(p+"?from=x"),
			bad(p+"?to=-1"),
			bad(p+"?from=5&to=2"),
			bad(p+"?since=2000&until=1000"),
			bad(p+"?limit=0"),
			bad(p+"?limit=1001"),
			bad(p+"?order=sideways"),
		)
	}
	out = append(out,
		bad("/v1/audit/follow?order=desc"),
		badCase{name: "GET /v1/audit/follow/bad Last-Event-ID", method: "GET", path: "/v1/audit/follow",
			header: map[string]string{"Last-Event-ID": "not-a-cursor"}, status: 400, code: api.CodeBadRequest},
	)
	return out
}

// semanticCases: well-formed requests the state forbids: unknown ids, stale
// epochs and incarnations, wrong phases.
func semanticCases(f *fixture) []badCase {
	inc, staleInc := f.inc1, f.inc1-1
	h := f.handoff
	w := func(name, path, body string, status int, code string) badCase {
		return badCase{name: name, method: "POST", path: path, body: body, status: status, code: code, viaRaft: true}
	}
	item := func(name, path, body string, status int, code string) badCase {
		return badCase{name: name, method: "POST", path: path, body: body, status: status, code: code, item: true, viaRaft: true}
	}
	items := func(format string, args ...any) string {
		return fmt.Sprintf(`{"incarnation":%d,"items":[`+format+`]}`, append([]any{inc}, args...)...)
	}
	staleItems := func(format string, args ...any) string {
		return fmt.Sprintf(`{"incarnation":%d,"items":[`+format+`]}`, append([]any{staleInc}, args...)...)
	}
	return []badCase{
		// Unknown ids.
		{name: "GET unknown worker", method: "GET", path: "/v1/workers/nope", status: 404, code: string(fsm.CodeUnknownWorker)},
		{name: "GET assignment of unknown worker", method: "GET", path: "/v1/workers/nope/assignment", status: 404, code: string(fsm.CodeUnknownWorker)},
		{name: "DELETE unknown worker", method: "DELETE", path: "/v1/workers/nope", status: 404, code: string(fsm.CodeUnknownWorker), viaRaft: true},
		{name: "heartbeat unknown worker", method: "POST", path: "/v1/workers/nope/heartbeat", body: `{"incarnation":1}`, status: 404, code: api.CodeUnknownSession},
		w("leave unknown worker", "/v1/workers/nope/leave", `{"incarnation":1}`, 404, string(fsm.CodeUnknownWorker)),
		w("drained by unknown worker", "/v1/workers/nope/drained", `{"incarnation":1,"items":[{"partition":"p1","epoch":1,"through_seq":0}]}`, 404, string(fsm.CodeUnknownWorker)),
		w("activated by unknown worker", "/v1/workers/nope/activated", `{"incarnation":1,"items":[{"partition":"p2","epoch":1}]}`, 404, string(fsm.CodeUnknownWorker)),
		w("checkpoints by unknown worker", "/v1/workers/nope/checkpoints", `{"incarnation":1,"items":[{"partition":"p4","epoch":1,"seq":1}]}`, 404, string(fsm.CodeUnknownWorker)),
		w("released by unknown worker", "/v1/workers/nope/released", `{"incarnation":1,"items":[{"partition":"p4","epoch":1,"through_seq":0}]}`, 404, string(fsm.CodeUnknownWorker)),
		w("cordon unknown worker", "/v1/workers/nope/cordon", `{"on":true}`, 404, string(fsm.CodeUnknownWorker)),
		{name: "GET unknown partition", method: "GET", path: "/v1/partitions/nope", status: 404, code: string(fsm.CodeUnknownPartition)},
		{name: "DELETE unknown partition", method: "DELETE", path: "/v1/partitions/nope", status: 404, code: string(fsm.CodeUnknownPartition), viaRaft: true},
		{name: "DELETE unknown partitions", method: "DELETE", path: "/v1/partitions", body: `{"partitions":["nope"]}`,
			status: 404, code: string(fsm.CodeUnknownPartition), item: true, viaRaft: true},
		{name: "move unknown partition", method: "POST", path: "/v1/partitions/nope/move", body: `{"to":"w2"}`, status: 404, code: string(fsm.CodeUnknownPartition)},
		w("move to unknown worker", "/v1/partitions/p4/move", `{"to":"nope"}`, 404, string(fsm.CodeUnknownWorker)),
		w("pin unknown partition", "/v1/partitions/nope/pin", `{"worker":"w1"}`, 404, string(fsm.CodeUnknownPartition)),
		w("pin to unknown worker", "/v1/partitions/p3/pin", `{"worker":"nope"}`, 404, string(fsm.CodeUnknownWorker)),
		item("drained unknown handoff", "/v1/workers/w1/drained", items(`{"handoff":99,"partition":"p1","epoch":1,"through_seq":0}`), 404, string(fsm.CodeUnknownHandoff)),
		item("checkpoint unknown partition", "/v1/workers/w1/checkpoints", items(`{"partition":"nope","epoch":1,"seq":1}`), 404, string(fsm.CodeUnknownPartition)),
		item("activated unknown partition", "/v1/workers/w1/activated", items(`{"partition":"nope","epoch":1}`), 404, string(fsm.CodeUnknownPartition)),
		item("released unknown partition", "/v1/workers/w1/released", items(`{"partition":"nope","epoch":1,"through_seq":0}`), 404, string(fsm.CodeUnknownPartition)),

		// Stale epochs.
		item("checkpoint stale epoch", "/v1/workers/w1/checkpoints", items(`{"partition":"p4","epoch":7,"seq":1}`), 409, string(fsm.CodeStaleEpoch)),
		item("activated stale epoch", "/v1/workers/w1/activated", items(`{"partition":"p2","epoch":7}`), 409, string(fsm.CodeStaleEpoch)),
		item("released stale epoch", "/v1/workers/w1/released", items(`{"partition":"p4","epoch":7,"through_seq":0}`), 409, string(fsm.CodeStaleEpoch)),
		item("drained stale epoch", "/v1/workers/w1/drained", items(`{"handoff":%d,"partition":"p1","epoch":7,"through_seq":0}`, h), 409, string(fsm.CodeStaleEpoch)),

		// Stale incarnations.
		w("leave stale incarnation", "/v1/workers/w1/leave", fmt.Sprintf(`{"incarnation":%d}`, staleInc), 409, string(fsm.CodeStaleIncarnation)),
		w("drained stale incarnation", "/v1/workers/w1/drained", staleItems(`{"handoff":%d,"partition":"p1","epoch":1,"through_seq":0}`, h), 409, string(fsm.CodeStaleIncarnation)),
		w("activated stale incarnation", "/v1/workers/w1/activated", staleItems(`{"partition":"p2","epoch":1}`), 409, string(fsm.CodeStaleIncarnation)),
		w("checkpoints stale incarnation", "/v1/workers/w1/checkpoints", staleItems(`{"partition":"p4","epoch":1,"seq":1}`), 409, string(fsm.CodeStaleIncarnation)),
		w("released stale incarnation", "/v1/workers/w1/released", staleItems(`{"partition":"p4","epoch":1,"through_seq":0}`), 409, string(fsm.CodeStaleIncarnation)),
		{name: "heartbeat stale incarnation", method: "POST", path: "/v1/workers/w1/heartbeat",
			body: fmt.Sprintf(`{"incarnation":%d}`, staleInc), status: 404, code: api.CodeUnknownSession},

		// Wrong phases and other state rules.
		item("activated while preparing", "/v1/workers/w1/activated", items(`{"partition":"p1","epoch":1}`), 409, string(fsm.CodeWrongPhase)),
		item("activated while active", "/v1/workers/w1/activated", items(`{"partition":"p4","epoch":1}`), 409, string(fsm.CodeWrongPhase)),
		item("drained without a handoff", "/v1/workers/w1/drained", items(`{"partition":"p4","epoch":1,"through_seq":0}`), 404, string(fsm.CodeUnknownHandoff)),
		item("released while handing off", "/v1/workers/w1/released", items(`{"partition":"p1","epoch":1,"through_seq":0}`), 409, string(fsm.CodeHandoffInProgress)),
		item("checkpoint by non-owner", "/v1/workers/w2/checkpoints", fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p4","epoch":1,"seq":1}]}`, f.inc2),
			409, string(fsm.CodeNotOwner)),
		w("move while activating", "/v1/partitions/p2/move", `{"to":"w2"}`, 409, string(fsm.CodeWrongPhase)),
		w("move while handing off", "/v1/partitions/p1/move", `{"to":"w2"}`, 409, string(fsm.CodeHandoffInProgress)),
		w("move to its owner", "/v1/partitions/p4/move", `{"to":"w1"}`, 400, string(fsm.CodeSameWorker)),
		w("move to a cordoned worker", "/v1/partitions/p4/move", `{"to":"w3"}`, 409, string(fsm.CodeWorkerCordoned)),
		w("register without a worker id", "/v1/workers/register", `{"worker":""}`, 400, string(fsm.CodeInvalidArgument)),
		w("register with a bad label", "/v1/workers/register", `{"worker":"w9","labels":[{"key":"","value":"x"}]}`, 400, string(fsm.CodeInvalidArgument)),
		item("declare overlapping subjects", "/v1/partitions", `{"partitions":[{"id":"p9","subjects":["s.p4.>"]}]}`, 409, string(fsm.CodeSubjectOverlap)),
		item("redeclare with another spec", "/v1/partitions", `{"partitions":[{"id":"p4","subjects":["s.other.>"]}]}`, 409, string(fsm.CodePartitionExists)),
		{name: "declare nothing", method: "POST", path: "/v1/partitions", body: `{"partitions":[]}`, status: 400, code: api.CodeBadRequest},
		{name: "remove no partitions", method: "DELETE", path: "/v1/partitions", body: `{"partitions":[]}`, status: 400, code: api.CodeBadRequest},
		{name: "join without an id", method: "POST", path: "/v1/cluster/join", body: `{"raft_addr":"127.0.0.1:1","api_addr":"http://127.0.0.1:1"}`, status: 400, code: api.CodeBadRequest},
		{name: "join with a bad raft address", method: "POST", path: "/v1/cluster/join", body: `{"id":"n9","raft_addr":"nowhere","api_addr":"http://127.0.0.1:1"}`, status: 400, code: string(fsm.CodeInvalidArgument)},
		{name: "join with a bad API address", method: "POST", path: "/v1/cluster/join", body: `{"id":"n9","raft_addr":"127.0.0.1:1","api_addr":"ftp://x"}`, status: 400, code: string(fsm.CodeInvalidArgument)},
		{name: "remove a node without an id", method: "POST", path: "/v1/cluster/remove", body: `{}`, status: 400, code: api.CodeBadRequest},
		{name: "request id with whitespace", method: "POST", path: "/v1/workers/w1/cordon", body: `{"on":true}`,
			header: map[string]string{api.HeaderRequestID: "a b"}, status: 400, code: api.CodeBadRequest},
		{name: "request id too long", method: "POST", path: "/v1/workers/w1/cordon", body: `{"on":true}`,
			header: map[string]string{api.HeaderRequestID: strings.Repeat("r", 129)}, status: 400, code: api.CodeBadRequest},
		{name: "request id reused for another command", method: "POST", path: "/v1/workers/w3/cordon", body: `{"on":false}`,
			header: map[string]string{api.HeaderRequestID: fixtureRequestID}, status: 409, code: string(fsm.CodeRequestIDReused), viaRaft: true},
		{name: "plan without a planner", method: "GET", path: "/v1/plan", status: 404, code: api.CodeNotFound},

		// Unknown paths.
		{name: "unknown path", method: "GET", path: "/v1/nope", status: 404, code: api.CodeNotFound},
		{name: "unknown version", method: "GET", path: "/v2/workers", status: 404, code: api.CodeNotFound},
		{name: "root", method: "GET", path: "/", status: 404, code: api.CodeNotFound},
		{name: "unknown worker verb", method: "POST", path: "/v1/workers/w1/explode", body: `{}`, status: 404, code: api.CodeNotFound},
		{name: "path below an endpoint", method: "GET", path: "/v1/workers/w1/assignment/extra", status: 404, code: api.CodeNotFound},
	}
}

// TestBadInput: for every endpoint, bad input gets the expected status and
// code in the API's error body, and changes nothing on the leader: neither the
// state's content nor the audit log, and, for requests refused before raft,
// not even the state's snapshot bytes. Each case is sent to the leader and to
// a follower (which forwards).
func TestBadInput(t *testing.T) {
	f := newFixture(t)
	var cases []badCase
	cases = append(cases, authCases(f)...)
	cases = append(cases, methodCases(f)...)
	cases = append(cases, bodyCases(f)...)
	cases = append(cases, queryCases()...)
	cases = append(cases, semanticCases(f)...)
	cases = append(cases, strictCases(f)...)
	cases = append(cases, fieldCases(f)...)
	for _, target := range []string{"leader", "follower"} {
		t.Run(target, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					base := f.leaderURL(t)
					if target == "follower" {
						base = f.followerURL(t)
					}
					before := capture(t, f.c)
					token := opToken
					if tc.token != "" {
						token = tc.token
					}
					if tc.noAuth {
						token = ""
					}
					send := do
					if tc.chunked {
						send = chunked
					}
					resp := send(t, f.hc, tc.method, base+tc.path, tc.body, token, tc.header)
					checkAnswer(t, tc, resp)
					unchanged(t, before, capture(t, f.c), !tc.viaRaft)
				})
			}
		})
	}
}

func checkAnswer(t *testing.T, tc badCase, resp response) {
	t.Helper()
	if tc.item {
		if resp.status != http.StatusOK {
			t.Fatalf("status %d, want 200 with a rejected item: %s", resp.status, resp.body)
		}
		var wr struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(resp.body, &wr); err != nil || len(wr.Items) == 0 {
			t.Fatalf("no items in %s (%v)", resp.body, err)
		}
		e, err := strictError(tc.status, []byte(`{"error":`+string(wr.Items[0])+`}`))
		if err != nil {
			t.Fatal(err)
		}
		if e.Code != tc.code {
			t.Fatalf("item code %s (%s), want %s", e.Code, e.Message, tc.code)
		}
		return
	}
	if resp.status != tc.status {
		t.Fatalf("status %d, want %d: %s", resp.status, tc.status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	e, err := strictError(resp.status, resp.body)
	if err != nil {
		t.Fatal(err)
	}
	if e.Code != tc.code {
		t.Fatalf("code %s (%s), want %s", e.Code, e.Message, tc.code)
	}
	if !strings.Contains(e.Message, tc.msg) {
		t.Fatalf("message %q, want it to contain %q", e.Message, tc.msg)
	}
	if tc.allow != "" {
		if got := resp.header.Get("Allow"); got != tc.allow {
			t.Fatalf("Allow %q, want %q", got, tc.allow)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
