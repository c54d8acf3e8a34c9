package server_test

import (
	"fmt"
	"strings"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// strictCases: bodies that break the JSON rules (docs/api.md, "Request
// bodies") are 400 bad_request naming the JSON path, before anything reaches
// raft. The first ones are the issue's: each used to become a different,
// valid request.
func strictCases(f *fixture) []badCase {
	bad := func(name, path, body, msg string) badCase {
		return badCase{name: "strict/" + name, method: "POST", path: path, body: body, status: 400, code: api.CodeBadRequest, msg: msg}
	}
	w1 := func(verb string) string { return "/v1/workers/w1/" + verb }
	items := func(format string, args ...any) string {
		return fmt.Sprintf(`{"incarnation":%d,"items":[`+format+`]}`, append([]any{f.inc1}, args...)...)
	}
	return []badCase{
		// Missing fields used to become defaults.
		bad("rebalance {} used to resume rebalancing", "/v1/rebalance", `{}`, "paused: required"),
		bad("rebalance null", "/v1/rebalance", `null`, "must be a JSON object, not null"),
		bad("rebalance paused null", "/v1/rebalance", `{"paused":null}`, "paused: required; null given"),
		bad("cordon {} used to uncordon w3", "/v1/workers/w3/cordon", `{}`, "on: required"),
		bad("move {} used to start a release", "/v1/partitions/p4/move", `{}`, "to: required"),
		bad("pin {} (an unpin names the empty worker)", "/v1/partitions/p4/pin", `{}`, "worker: required"),
		bad("register {}", "/v1/workers/register", `{}`, "worker: required"),
		bad("heartbeat {}", w1("heartbeat"), `{}`, "incarnation: required"),
		bad("leave {}", w1("leave"), `{}`, "incarnation: required"),
		bad("join without api_addr", "/v1/cluster/join", `{"id":"n9","raft_addr":"127.0.0.1:1"}`, "api_addr: required"),
		bad("remove node {}", "/v1/cluster/remove", `{}`, "id: required"),
		bad("declare {}", "/v1/partitions", `{}`, "partitions: required"),

		// Keys match exactly, once.
		bad("wrong case", "/v1/rebalance", `{"PAUSED":false}`, `unknown key "PAUSED" (did you mean "paused"?)`),
		bad("wrong case with the right key too", "/v1/rebalance", `{"paused":true,"Paused":false}`, `unknown key "Paused"`),
		bad("duplicate key", "/v1/rebalance", `{"paused":true,"paused":false}`, `duplicate key "paused"`),
		bad("cordon wrong case", "/v1/workers/w3/cordon", `{"On":false}`, `unknown key "On" (did you mean "on"?)`),
		bad("move camel case", "/v1/partitions/p4/move", `{"to":"w2","drainTimeoutMs":5}`, `did you mean "drain_timeout_ms"`),
		bad("unknown key in an item", w1("checkpoints"), items(`{"partition":"p4","epoch":1,"seq":1,"extra":0}`), `items[0]: unknown key "extra"`),
		bad("wrong case in an item", w1("checkpoints"), items(`{"Partition":"p4","epoch":1,"seq":1}`), `items[0]: unknown key "Partition"`),
		bad("duplicate key in an item", w1("released"), items(`{"partition":"p4","epoch":1,"through_seq":0,"through_seq":9}`),
			`items[0]: duplicate key "through_seq"`),
		bad("unknown key in a partition spec", "/v1/partitions", `{"partitions":[{"id":"p9","subject":["s.p9"]}]}`,
			`partitions[0]: unknown key "subject" (did you mean "subjects"?)`),
		bad("label in the old form", "/v1/workers/register", `{"worker":"w9","labels":[{"zone":"a"}]}`, `labels[0]: unknown key "zone"`),

		// Required fields of items.
		bad("item without epoch", w1("checkpoints"), items(`{"partition":"p4","epoch":1,"seq":1},{"partition":"p4","seq":2}`), "items[1].epoch: required"),
		bad("drain item without through_seq", w1("drained"), items(`{"handoff":%d,"partition":"p1","epoch":1}`, f.handoff), "items[0].through_seq: required"),
		bad("null item", w1("activated"), items(`null`), "items[0]: null is not allowed"),
		bad("label without value", "/v1/workers/register", `{"worker":"w9","labels":[{"key":"zone"}]}`, "labels[0].value: required"),
		bad("spec without id", "/v1/partitions", `{"partitions":[{"subjects":["s.p9"]}]}`, "partitions[0].id: required"),
		bad("null partition id", "/v1/partitions", `{"partitions":[null]}`, "partitions[0]: null is not allowed"),

		// Items that mean nothing.
		bad("drained without items", w1("drained"), fmt.Sprintf(`{"incarnation":%d}`, f.inc1), "items: required"),
		bad("activated with null items", w1("activated"), fmt.Sprintf(`{"incarnation":%d,"items":null}`, f.inc1), "items: required; null given"),
		bad("drained with no items", w1("drained"), items(``), "no items"),
		bad("activated with no items", w1("activated"), items(``), "no items"),
		bad("checkpoints with no items", w1("checkpoints"), items(``), "no items"),
		bad("released with no items", w1("released"), items(``), "no items"),

		// Numbers.
		bad("weight beyond uint32 (used to become 1)", "/v1/workers/register", `{"worker":"w9","weight":4294967297}`, "weight: 4294967297 out of range"),
		bad("negative weight", "/v1/workers/register", `{"worker":"w9","weight":-1}`, "weight: want a non-negative integer"),
		bad("fractional weight", "/v1/workers/register", `{"worker":"w9","weight":1.5}`, "weight: want a non-negative integer"),
		bad("seq with an exponent", w1("checkpoints"), items(`{"partition":"p4","epoch":1,"seq":1e6}`), "items[0].seq: want a non-negative integer"),
		bad("negative seq", w1("checkpoints"), items(`{"partition":"p4","epoch":1,"seq":-5}`), "items[0].seq: want a non-negative integer"),
		bad("epoch beyond uint64", w1("checkpoints"), items(`{"partition":"p4","epoch":18446744073709551616,"seq":5}`), "items[0].epoch: 18446744073709551616 out of range"),
		bad("incarnation as a string", w1("leave"), `{"incarnation":"5"}`, "incarnation: want a non-negative integer, got a string"),
		bad("drain_timeout_ms 8e12", "/v1/partitions/p4/move", `{"to":"w2","drain_timeout_ms":8e12}`, "drain_timeout_ms: want an integer"),
		bad("drain_timeout_ms 2e13", "/v1/partitions/p4/move", `{"to":"w2","drain_timeout_ms":2e13}`, "drain_timeout_ms: want an integer"),
		bad("drain_timeout_ms beyond int64", "/v1/partitions/p4/move", `{"to":"w2","drain_timeout_ms":9223372036854775808}`, "out of range"),
		bad("boolean as a string", "/v1/rebalance", `{"paused":"false"}`, "paused: want true or false"),

		// Encoding.
		bad("invalid UTF-8", "/v1/workers/register", "{\"worker\":\"w\xff\"}", "not valid UTF-8"),
	}
}

// fieldCases: well-formed bodies whose values the state machine would refuse
// are refused before they are proposed (400 invalid_argument naming the
// field), and request ids and path ids are checked the same way.
func fieldCases(f *fixture) []badCase {
	invalid := func(name, path, body, msg string) badCase {
		return badCase{name: "field/" + name, method: "POST", path: path, body: body, status: 400, code: string(fsm.CodeInvalidArgument), msg: msg}
	}
	long := strings.Repeat("x", fsm.MaxIDLen+1)
	items := func(format string, args ...any) string {
		return fmt.Sprintf(`{"incarnation":%d,"items":[`+format+`]}`, append([]any{f.inc1}, args...)...)
	}
	reqID := func(name, id string) badCase {
		return badCase{name: "field/request id " + name, method: "POST", path: "/v1/workers/w1/cordon?request_id=" + id, body: `{"on":true}`,
			status: 400, code: api.CodeBadRequest, msg: "request id"}
	}
	return []badCase{
		// drain_timeout_ms: 1 ms to fsm.MaxDrainTimeout, checked before it
		// is multiplied (8e12 ms overflowed the deadline into a forced
		// commit; 2e13 wrapped to 18 days).
		invalid("drain_timeout_ms negative (used to mean the default)", "/v1/partitions/p4/move", `{"to":"w2","drain_timeout_ms":-1}`, "drain_timeout_ms: -1 out of range"),
		invalid("drain_timeout_ms 8000000000000", "/v1/partitions/p4/move", `{"to":"w2","drain_timeout_ms":8000000000000}`, "drain_timeout_ms"),
		invalid("drain_timeout_ms 20000000000000", "/v1/partitions/p4/move", `{"to":"w2","drain_timeout_ms":20000000000000}`, "drain_timeout_ms"),
		invalid("drain_timeout_ms one past a day", "/v1/partitions/p4/move", `{"to":"w2","drain_timeout_ms":86400001}`, "drain_timeout_ms"),
		invalid("drain_timeout_ms most negative", "/v1/partitions/p4/move", `{"to":"w2","drain_timeout_ms":-9223372036854775808}`, "drain_timeout_ms"),

		// Ids.
		invalid("move to the empty worker", "/v1/partitions/p4/move", `{"to":""}`, "to: invalid worker id"),
		invalid("move to an invalid worker id", "/v1/partitions/p4/move", `{"to":"w 2"}`, "to: invalid worker id"),
		invalid("move with a long reason", "/v1/partitions/p4/move", `{"to":"w2","reason":"`+strings.Repeat("r", fsm.MaxReasonLen+1)+`"}`, "reason: longer than"),
		invalid("move with ESC in the reason", "/v1/partitions/p4/move", `{"to":"w2","reason":"a\u001b[2Jb"}`, "reason: holds control characters"),
		invalid("register a 129-byte worker id", "/v1/workers/register", `{"worker":"`+long+`"}`, "worker: invalid worker id"),
		invalid("register an id with a space", "/v1/workers/register", `{"worker":"bad id!"}`, "worker: invalid worker id"),
		invalid("register ESC in a label value", "/v1/workers/register", `{"worker":"w9","labels":[{"key":"zone","value":"\u001b]0;x\u0007"}]}`,
			"labels[0]: label zone value holds control characters"),
		invalid("register a long label value", "/v1/workers/register",
			`{"worker":"w9","labels":[{"key":"zone","value":"`+strings.Repeat("v", fsm.MaxLabelValueLen+1)+`"}]}`, "labels[0]"),
		invalid("checkpoint an invalid partition id", "/v1/workers/w1/checkpoints", items(`{"partition":"p 4","epoch":1,"seq":1}`), "items[0].partition: invalid partition id"),
		invalid("release a 129-byte partition id", "/v1/workers/w1/released", items(`{"partition":"`+long+`","epoch":1,"through_seq":1}`), "items[0].partition"),
		invalid("declare an invalid partition id", "/v1/partitions", `{"partitions":[{"id":"p*","subjects":["s.x"]}]}`, "partitions[0].id"),
		invalid("declare a subject too long", "/v1/partitions", `{"partitions":[{"id":"p9","subjects":["`+strings.Repeat("s", fsm.MaxSubjectLen+1)+`"]}]}`,
			"partitions[0].subjects[0]"),
		{name: "field/remove an invalid partition id", method: "DELETE", path: "/v1/partitions", body: `{"partitions":["p 1"]}`,
			status: 400, code: string(fsm.CodeInvalidArgument), msg: "partitions[0]"},
		{name: "field/remove a partition by an invalid id", method: "DELETE", path: "/v1/partitions/p%20x",
			status: 400, code: string(fsm.CodeInvalidArgument), msg: "invalid partition id"},
		invalid("pin to an invalid worker", "/v1/partitions/p4/pin", `{"worker":"w/1"}`, "worker: invalid worker id"),
		invalid("cordon an invalid worker id in the path", "/v1/workers/"+long+"/cordon", `{"on":true}`, "invalid worker id"),
		invalid("move an invalid partition id in the path", "/v1/partitions/p%2A/move", `{"to":"w2"}`, "invalid partition id"),
		{name: "field/GET an invalid worker id", method: "GET", path: "/v1/workers/w%20x", status: 400, code: string(fsm.CodeInvalidArgument)},

		// Request ids: printable ASCII without spaces, at most 128 bytes.
		reqID("with NUL", "a%00b"),
		reqID("with ESC", "a%1Bb"),
		reqID("with DEL", "a%7Fb"),
		reqID("with a tab", "a%09b"),
		reqID("with UTF-8", "caf%C3%A9"),
	}
}
