package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// strictTypes are the request bodies the API decodes, plus shapes the rules
// must handle that the API types do not have yet (embedding, maps, pointers,
// quoted numbers, self-decoding leaves).
func strictTypes() map[string]func() any {
	return map[string]func() any{
		"register":    func() any { return new(api.RegisterRequest) },
		"heartbeat":   func() any { return new(api.HeartbeatRequest) },
		"leave":       func() any { return new(api.LeaveRequest) },
		"drained":     func() any { return new(api.DrainedRequest) },
		"activated":   func() any { return new(api.ActivatedRequest) },
		"checkpoints": func() any { return new(api.CheckpointsRequest) },
		"released":    func() any { return new(api.ReleasedRequest) },
		"declare":     func() any { return new(api.DeclareRequest) },
		"remove":      func() any { return new(api.RemovePartitionsRequest) },
		"move":        func() any { return new(api.MoveRequest) },
		"cordon":      func() any { return new(api.CordonRequest) },
		"pin":         func() any { return new(api.PinRequest) },
		"rebalance":   func() any { return new(api.RebalanceRequest) },
		"join":        func() any { return new(api.JoinRequest) },
		"remove-node": func() any { return new(api.RemoveRequest) },
		"shapes":      func() any { return new(shapes) },
		"tokens":      func() any { return new(tokenFile) },
	}
}

type embedded struct {
	Inner  string `json:"inner"`
	Shared int    `json:"shared,omitempty"`
}

// shapes exercises the rules on what the request types do not use today.
type shapes struct {
	embedded
	Shared  string               `json:"shared,omitempty"` // shallower: wins over embedded.Shared
	Ptr     *int32               `json:"ptr,omitempty"`
	Map     map[string]uint8     `json:"map,omitempty"`
	Quoted  int64                `json:"quoted,omitempty,string"`
	Type    fsm.EventType        `json:"type,omitempty"` // UnmarshalText: a leaf
	Raw     json.RawMessage      `json:"raw,omitempty"`  // UnmarshalJSON: a leaf
	Any     any                  `json:"any,omitempty"`
	Float   float32              `json:"float,omitempty"`
	Bytes   []byte               `json:"bytes,omitempty"`
	Nested  []map[string][]int8  `json:"nested,omitempty"`
	Skipped string               `json:"-"`
	Plain   string               `json:",omitempty"` // named after the field
	Phases  map[string]fsm.Phase `json:"phases,omitempty"`
}

// TestDecodeStrict is the specification of the request body rules: each
// body either decodes to want, or is refused with a message holding err.
func TestDecodeStrict(t *testing.T) {
	i32 := int32(-7)
	tests := []struct {
		name string
		typ  string
		body string
		want any    // the decoded value when accepted
		err  string // a substring of the refusal
	}{
		// The body itself.
		{name: "empty body", typ: "rebalance", body: ``, err: "empty body"},
		{name: "white space", typ: "rebalance", body: " \n\t", err: "empty body"},
		{name: "null", typ: "rebalance", body: `null`, err: "must be a JSON object, not null"},
		{name: "array", typ: "rebalance", body: `[{"paused":true}]`, err: "not an array"},
		{name: "string", typ: "rebalance", body: `"x"`, err: "not a string"},
		{name: "number", typ: "rebalance", body: `1`, err: "not the number 1"},
		{name: "boolean", typ: "rebalance", body: `true`, err: "not true"},
		{name: "trailing object", typ: "rebalance", body: `{"paused":true}{}`, err: "trailing data"},
		{name: "trailing brace", typ: "rebalance", body: `{"paused":true}}`, err: "trailing data"},
		{name: "trailing garbage", typ: "rebalance", body: `{"paused":true} x`, err: "trailing data"},
		{name: "truncated", typ: "rebalance", body: `{"paused":`, err: "unexpected end"},
		{name: "invalid UTF-8", typ: "register", body: "{\"worker\":\"w\xff\"}", err: "not valid UTF-8"},
		{name: "trailing white space is fine", typ: "rebalance", body: "{\"paused\":true}\r\n", want: &api.RebalanceRequest{Paused: true}},

		// Required fields.
		{name: "rebalance {}", typ: "rebalance", body: `{}`, err: "paused: required"},
		{name: "rebalance paused null", typ: "rebalance", body: `{"paused":null}`, err: "paused: required; null given"},
		{name: "rebalance paused false", typ: "rebalance", body: `{"paused":false}`, want: &api.RebalanceRequest{}},
		{name: "cordon {}", typ: "cordon", body: `{}`, err: "on: required"},
		{name: "move {}", typ: "move", body: `{}`, err: "to: required"},
		{name: "move with optional fields null", typ: "move", body: `{"to":"w2","force":null,"reason":null}`, want: &api.MoveRequest{To: "w2"}},
		{name: "pin {}", typ: "pin", body: `{}`, err: "worker: required"},
		{name: "pin empty worker (unpin)", typ: "pin", body: `{"worker":""}`, want: &api.PinRequest{}},
		{name: "join without api_addr", typ: "join", body: `{"id":"n4","raft_addr":"h:1"}`, err: "api_addr: required"},
		{name: "heartbeat {}", typ: "heartbeat", body: `{}`, err: "incarnation: required"},
		{name: "checkpoints without items", typ: "checkpoints", body: `{"incarnation":3}`, err: "items: required"},
		{name: "checkpoints items null", typ: "checkpoints", body: `{"incarnation":3,"items":null}`, err: "items: required; null given"},
		{name: "item without epoch", typ: "checkpoints", body: `{"incarnation":3,"items":[{"partition":"p","epoch":1,"seq":1},{"partition":"p","seq":1}]}`,
			err: "items[1].epoch: required"},
		{name: "drain item without handoff (optional)", typ: "drained", body: `{"incarnation":3,"items":[{"partition":"p","epoch":1,"through_seq":4}]}`,
			want: &api.DrainedRequest{Incarnation: 3, Items: []fsm.DrainItem{{Partition: "p", Epoch: 1, ThroughSeq: 4}}}},
		{name: "label without value", typ: "register", body: `{"worker":"w","labels":[{"key":"zone"}]}`, err: "labels[0].value: required"},
		{name: "null item", typ: "activated", body: `{"incarnation":3,"items":[null]}`, err: "items[0]: null is not allowed"},
		{name: "partition spec without id", typ: "declare", body: `{"partitions":[{"subjects":["a"]}]}`, err: "partitions[0].id: required"},

		// Keys.
		{name: "wrong case", typ: "rebalance", body: `{"PAUSED":false}`, err: `unknown key "PAUSED" (did you mean "paused"?)`},
		{name: "camel case", typ: "move", body: `{"to":"w","drainTimeoutMs":5}`, err: `(did you mean "drain_timeout_ms"?)`},
		{name: "typo", typ: "checkpoints", body: `{"incarnaton":1,"items":[]}`, err: `(did you mean "incarnation"?)`},
		{name: "unknown key lists the known ones", typ: "cordon", body: `{"on":true,"bogus":1}`, err: `unknown key "bogus" (known: on)`},
		{name: "duplicate key", typ: "rebalance", body: `{"paused":true,"paused":false}`, err: `duplicate key "paused"`},
		{name: "duplicate key in an item", typ: "released", body: `{"incarnation":1,"items":[{"partition":"p","epoch":1,"epoch":2,"through_seq":0}]}`,
			err: `items[0]: duplicate key "epoch"`},
		{name: "unknown key in an item", typ: "drained", body: `{"incarnation":1,"items":[{"partiton":"p","epoch":1,"through_seq":0}]}`,
			err: `items[0]: unknown key "partiton" (did you mean "partition"?)`},
		{name: "wrong case in an item", typ: "checkpoints", body: `{"incarnation":1,"items":[{"Partition":"p","epoch":1,"seq":0}]}`,
			err: `items[0]: unknown key "Partition"`},
		{name: "old label form", typ: "register", body: `{"worker":"w","labels":[{"zone":"a"}]}`, err: `labels[0]: unknown key "zone"`},
		{name: "long unknown key is clipped", typ: "cordon", body: `{"` + strings.Repeat("k", 5000) + `":1}`, err: "…"},

		// Types and numbers.
		{name: "string for a bool", typ: "rebalance", body: `{"paused":"false"}`, err: "paused: want true or false, got a string"},
		{name: "number for a string", typ: "register", body: `{"worker":7}`, err: "worker: want a string, got the number 7"},
		{name: "object for an array", typ: "declare", body: `{"partitions":{}}`, err: "partitions: want an array, got an object"},
		{name: "array for an object", typ: "declare", body: `{"partitions":[[]]}`, err: "partitions[0]: want an object, got an array"},
		{name: "string for a number", typ: "heartbeat", body: `{"incarnation":"7"}`, err: "incarnation: want a non-negative integer, got a string"},
		{name: "negative into unsigned", typ: "heartbeat", body: `{"incarnation":-1}`, err: "incarnation: want a non-negative integer"},
		{name: "minus zero into unsigned", typ: "heartbeat", body: `{"incarnation":-0}`, err: "incarnation: want a non-negative integer"},
		{name: "fraction into an integer", typ: "heartbeat", body: `{"incarnation":1.5}`, err: "want a non-negative integer, got the number 1.5"},
		{name: "whole fraction into an integer", typ: "heartbeat", body: `{"incarnation":1.0}`, err: "want a non-negative integer"},
		{name: "exponent into an integer", typ: "move", body: `{"to":"w","drain_timeout_ms":8e12}`, err: "drain_timeout_ms: want an integer, got the number 8e12"},
		{name: "uint64 max", typ: "heartbeat", body: `{"incarnation":18446744073709551615}`, want: &api.HeartbeatRequest{Incarnation: 1<<64 - 1}},
		{name: "uint64 overflow", typ: "heartbeat", body: `{"incarnation":18446744073709551616}`, err: "out of range 0 to 18446744073709551615"},
		{name: "uint32 overflow (weight)", typ: "register", body: `{"worker":"w","weight":4294967297}`, err: "weight: 4294967297 out of range 0 to 4294967295"},
		{name: "int64 overflow", typ: "move", body: `{"to":"w","drain_timeout_ms":9223372036854775808}`, err: "out of range of a 64-bit integer"},
		{name: "int64 min", typ: "move", body: `{"to":"w","drain_timeout_ms":-9223372036854775808}`, want: &api.MoveRequest{To: "w", DrainTimeoutMS: -1 << 63}},

		// Shapes the rules handle beyond today's request types.
		{name: "embedded field promoted and required", typ: "shapes", body: `{}`, err: "inner: required"},
		{name: "every shape", typ: "shapes",
			body: `{"inner":"i","shared":"s","ptr":-7,"map":{"a":1},"quoted":"12","type":"Claimed","raw":{"x":[1]},"any":[{"y":null}],` +
				`"float":1.5e3,"bytes":"AQI=","nested":[{"a":[1,-2]}],"Plain":"p","phases":{"x":"active"}}`,
			want: &shapes{embedded: embedded{Inner: "i"}, Shared: "s", Ptr: &i32, Map: map[string]uint8{"a": 1}, Quoted: 12,
				Type: fsm.EvClaimed, Raw: json.RawMessage(`{"x":[1]}`), Any: []any{map[string]any{"y": nil}}, Float: 1500,
				Bytes: []byte{1, 2}, Nested: []map[string][]int8{{"a": {1, -2}}}, Plain: "p", Phases: map[string]fsm.Phase{"x": fsm.PhaseActive}}},
		{name: "a skipped field is unknown", typ: "shapes", body: `{"inner":"i","Skipped":"x"}`, err: `unknown key "Skipped"`},
		{name: "map value out of range", typ: "shapes", body: `{"inner":"i","map":{"a":256}}`, err: "map.a: 256 out of range 0 to 255"},
		{name: "duplicate map key", typ: "shapes", body: `{"inner":"i","map":{"a":1,"a":2}}`, err: `map: duplicate key "a"`},
		{name: "null map value", typ: "shapes", body: `{"inner":"i","map":{"a":null}}`, err: "map.a: null is not allowed"},
		{name: "nested path", typ: "shapes", body: `{"inner":"i","nested":[{"a":[1,300]}]}`, err: "nested[0].a[1]: 300 out of range of a 8-bit integer"},
		{name: "quoted number unquoted", typ: "shapes", body: `{"inner":"i","quoted":12}`, err: "quoted: want a quoted value"},
		{name: "bad leaf value", typ: "shapes", body: `{"inner":"i","type":"Bogus"}`, err: "Bogus"},
		{name: "float out of range", typ: "shapes", body: `{"inner":"i","float":1e39}`, err: "float: 1e39 out of range of a 32-bit float"},
		{name: "deep nesting in a leaf is skipped iteratively", typ: "shapes",
			body: `{"inner":"i","any":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, err: "exceeded max depth"},

		// The token file.
		{name: "token file", typ: "tokens", body: `{"tokens":[{"role":"worker","worker":"w1","token":"s"}]}`,
			want: &tokenFile{Tokens: []tokenEntry{{Role: "worker", Worker: "w1", Token: "s"}}}},
		{name: "token file with an unknown key", typ: "tokens", body: `{"tokens":[{"role":"worker","wroker":"w1","token":"s"}]}`,
			err: `tokens[0]: unknown key "wroker" (did you mean "worker"?)`},
	}
	types := strictTypes()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := types[tt.typ]()
			err := decodeStrict([]byte(tt.body), v)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("decodeStrict(%.80q) = %v, want an error containing %q", tt.body, err, tt.err)
				}
				if !reflect.ValueOf(v).Elem().IsZero() {
					t.Fatalf("a refused body changed the value: %+v", v)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeStrict(%.80q): %v", tt.body, err)
			}
			if !reflect.DeepEqual(v, tt.want) {
				t.Fatalf("decodeStrict(%.80q) = %+v, want %+v", tt.body, v, tt.want)
			}
		})
	}
}

// TestDecodeStrict_RequestTypesMatchTheirDocs: the required fields of every
// request type are the ones docs/api.md lists, so that a tag that loses (or
// gains) omitempty changes the documented contract visibly.
func TestDecodeStrict_RequiredFields(t *testing.T) {
	want := map[string]string{
		"register":    "worker",
		"heartbeat":   "incarnation",
		"leave":       "incarnation",
		"drained":     "incarnation items items[].partition items[].epoch items[].through_seq",
		"activated":   "incarnation items items[].partition items[].epoch",
		"checkpoints": "incarnation items items[].partition items[].epoch items[].seq",
		"released":    "incarnation items items[].partition items[].epoch items[].through_seq",
		"declare":     "partitions partitions[].id partitions[].subjects",
		"remove":      "partitions",
		"move":        "to",
		"cordon":      "on",
		"pin":         "worker",
		"rebalance":   "paused",
		"join":        "id raft_addr api_addr",
		"remove-node": "id",
	}
	types := strictTypes()
	for name, fields := range want {
		got := strings.Join(requiredPaths(reflect.TypeOf(types[name]()).Elem(), ""), " ")
		if name == "register" {
			// labels are optional, but a label given has both halves.
			fields += " labels[].key labels[].value"
		}
		if got != fields {
			t.Errorf("%s: required %q, want %q", name, got, fields)
		}
	}
}

// requiredPaths lists the required JSON paths of struct type t, depth first.
func requiredPaths(t reflect.Type, prefix string) []string {
	var out []string
	for _, f := range fieldsOf(t) {
		p := prefix + f.name
		if f.required {
			out = append(out, p)
		}
		ft := f.typ
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			out = append(out, requiredPaths(ft.Elem(), p+"[].")...)
		}
	}
	return out
}

func TestDecodeStrict_NotAStructPointer(t *testing.T) {
	var m map[string]any
	for _, v := range []any{nil, m, &m, api.RebalanceRequest{}, (*api.RebalanceRequest)(nil)} {
		if err := decodeStrict([]byte(`{}`), v); err == nil || errors.As(err, new(*decodeError)) {
			t.Errorf("decodeStrict into %T: %v, want a programming error", v, err)
		}
	}
}

// FuzzDecodeStrict: whatever the strict decoder accepts, encoding/json
// re-encodes into a body the strict decoder accepts again, as the same value;
// and a refused body never changes the target.
func FuzzDecodeStrict(f *testing.F) {
	names := []string{"register", "heartbeat", "leave", "drained", "activated", "checkpoints", "released",
		"declare", "remove", "move", "cordon", "pin", "rebalance", "join", "remove-node", "shapes", "tokens"}
	seeds := []string{
		`{"worker":"w1","weight":2,"labels":[{"key":"zone","value":"a"}]}`,
		`{"incarnation":7}`,
		`{"incarnation":7,"items":[{"handoff":3,"partition":"p1","epoch":2,"through_seq":9}]}`,
		`{"incarnation":7,"items":[{"partition":"p1","epoch":2}]}`,
		`{"incarnation":7,"items":[{"partition":"p1","epoch":2,"seq":5}]}`,
		`{"partitions":[{"id":"p9","subjects":["a.>"],"weight":3,"start_after":4}]}`,
		`{"partitions":["p1","p2"]}`,
		`{"to":"w2","force":true,"reason":"r","drain_timeout_ms":1000}`,
		`{"on":true}`, `{"worker":""}`, `{"paused":false}`,
		`{"id":"n4","raft_addr":"127.0.0.1:7004","api_addr":"http://127.0.0.1:7104"}`,
		`{"id":"n4"}`,
		`{"inner":"i","map":{"a":1},"quoted":"-3","type":"Claimed","raw":[1,{}],"any":{"k":[null]},"float":-0.5,"bytes":"AQI=","nested":[{"b":[]}]}`,
		`{"tokens":[{"name":"ci","role":"operator","token":"x"}]}`,
		`{"PAUSED":false}`, `{"paused":true,"paused":false}`, `null`, `{}`, `[]`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	types := strictTypes()
	f.Fuzz(func(t *testing.T, sel uint8, body []byte) {
		name := names[int(sel)%len(names)]
		v := types[name]()
		if err := decodeStrict(body, v); err != nil {
			if !reflect.ValueOf(v).Elem().IsZero() {
				t.Fatalf("%s: refused body %q changed the value: %+v", name, body, v)
			}
			return
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: re-encode %+v: %v", name, v, err)
		}
		w := types[name]()
		if err := decodeStrict(again, w); err != nil {
			t.Fatalf("%s: accepted %q, but not its re-encoding %s: %v", name, body, again, err)
		}
		if !sameValue(reflect.ValueOf(v), reflect.ValueOf(w)) {
			t.Fatalf("%s: %q decoded to %+v, its re-encoding %s to %+v", name, body, v, again, w)
		}
	})
}

// sameValue reports whether a and b hold the same value, as far as JSON can
// tell: a nil and an empty slice or map are the same (both are omitted when
// optional), and raw JSON is compared compacted.
func sameValue(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == reflect.TypeFor[json.RawMessage]() {
		if a.Len() == 0 || b.Len() == 0 {
			return a.Len() == b.Len()
		}
		var ca, cb bytes.Buffer
		return json.Compact(&ca, a.Bytes()) == nil && json.Compact(&cb, b.Bytes()) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
	}
	switch a.Kind() {
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() || !sameValue(a.MapIndex(k), bv) {
				return false
			}
		}
		return true
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float()
	case reflect.String:
		return a.String() == b.String()
	}
	return false
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "ab", 2}, {"worker", "worker", 0}, {"worker", "wroker", 1},
		{"paused", "pasued", 1}, {"kitten", "sitting", 3}, {"incarnation", "incarnaton", 1}, {"ca", "abc", 3},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
