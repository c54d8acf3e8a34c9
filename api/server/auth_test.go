package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
)

// TestWorkerTokens_BoundToTheirWorker: a worker's token acts only for that
// worker. Each attack of the issue, made with w2's token (static or derived)
// against w1, is 403 before the body is read and changes nothing: a
// checkpoint a million ahead on w1's partition (the next failover would skip
// those messages), a release five million ahead, re-registering w1 (which
// orphaned its partitions), and every other worker call for w1. Tampered
// derived tokens are 401. Sent to the leader and to a follower.
func TestWorkerTokens_BoundToTheirWorker(t *testing.T) {
	f := newFixture(t)
	inc := f.inc1
	attacks := []struct{ name, path, body string }{
		{"checkpoint a million ahead on w1's partition", "/v1/workers/w1/checkpoints",
			fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p4","epoch":1,"seq":1000000}]}`, inc)},
		{"release five million ahead", "/v1/workers/w1/released",
			fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p4","epoch":1,"through_seq":5000000}]}`, inc)},
		{"re-register w1", "/v1/workers/register", `{"worker":"w1"}`},
		{"heartbeat as w1", "/v1/workers/w1/heartbeat", fmt.Sprintf(`{"incarnation":%d}`, inc)},
		{"leave as w1", "/v1/workers/w1/leave", fmt.Sprintf(`{"incarnation":%d}`, inc)},
		{"drain w1's handoff", "/v1/workers/w1/drained",
			fmt.Sprintf(`{"incarnation":%d,"items":[{"handoff":%d,"partition":"p1","epoch":1,"through_seq":0}]}`, inc, f.handoff)},
		{"activate w1's partition", "/v1/workers/w1/activated", fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p2","epoch":1}]}`, inc)},
		{"register a new worker", "/v1/workers/register", `{"worker":"w9"}`},
	}
	derived2 := derivedToken(t, "w2")
	mac := derived2[strings.LastIndexByte(derived2, '.')+1:]
	flipped := []byte(derived2)
	flipped[len(flipped)-1] ^= 1 // another base64url letter
	tampered := []struct{ name, token string }{
		{"last letter changed", string(flipped)},
		{"w2's MAC under w1's name", server.WorkerTokenPrefix + "w1." + mac},
		{"no MAC", server.WorkerTokenPrefix + "w2"},
		{"empty MAC", server.WorkerTokenPrefix + "w2."},
		{"MAC not base64url", server.WorkerTokenPrefix + "w2." + strings.Repeat("*", len(mac))},
		{"MAC with padding", derived2 + "="},
		{"invalid worker id", server.WorkerTokenPrefix + "w 2." + mac},
		{"prefix only", server.WorkerTokenPrefix},
		{"another key", mustToken(t, []byte(strings.Repeat("k", 32)), "w2")},
	}
	for _, target := range []string{"leader", "follower"} {
		t.Run(target, func(t *testing.T) {
			base := f.leaderURL(t)
			if target == "follower" {
				base = f.followerURL(t)
			}
			for _, tok := range []struct{ kind, token string }{{"static", worker2Token}, {"derived", derived2}} {
				for _, a := range attacks {
					t.Run(tok.kind+"/"+a.name, func(t *testing.T) {
						before := capture(t, f.c)
						resp := do(t, f.hc, "POST", base+a.path, a.body, tok.token, nil)
						checkAnswer(t, badCase{status: 403, code: api.CodeForbidden}, resp)
						if e, _ := strictError(resp.status, resp.body); !strings.Contains(e.Message, "worker w2") || !strings.Contains(e.Message, "worker w") {
							t.Errorf("message %q does not name both workers", e.Message)
						}
						unchanged(t, before, capture(t, f.c), true)
					})
				}
			}
			for _, tt := range tampered {
				t.Run("tampered/"+tt.name, func(t *testing.T) {
					before := capture(t, f.c)
					resp := do(t, f.hc, "POST", base+"/v1/workers/w2/heartbeat", fmt.Sprintf(`{"incarnation":%d}`, f.inc2), tt.token, nil)
					checkAnswer(t, badCase{status: 401, code: api.CodeUnauthorized}, resp)
					unchanged(t, before, capture(t, f.c), true)
				})
			}
		})
	}

	// The bound worker's own calls work, with either kind of token, and an
	// operator may still act for any worker.
	own := []struct{ name, token, path, body string }{
		{"static token heartbeats its worker", workerToken, "/v1/workers/w1/heartbeat", fmt.Sprintf(`{"incarnation":%d}`, inc)},
		{"derived token heartbeats its worker", derivedToken(t, "w1"), "/v1/workers/w1/heartbeat", fmt.Sprintf(`{"incarnation":%d}`, inc)},
		{"static token checkpoints its partition", workerToken, "/v1/workers/w1/checkpoints",
			fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p4","epoch":1,"seq":3}]}`, inc)},
		{"derived token checkpoints its partition", derivedToken(t, "w1"), "/v1/workers/w1/checkpoints",
			fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p4","epoch":1,"seq":4}]}`, inc)},
		{"derived token registers a worker no static token names", derivedToken(t, "w7"), "/v1/workers/register", `{"worker":"w7"}`},
		{"operator checkpoints for w1", opToken, "/v1/workers/w1/checkpoints",
			fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p4","epoch":1,"seq":5}]}`, inc)},
	}
	for _, tt := range own {
		t.Run("own/"+tt.name, func(t *testing.T) {
			resp := do(t, f.hc, "POST", f.followerURL(t)+tt.path, tt.body, tt.token, nil)
			if resp.status != http.StatusOK {
				t.Fatalf("status %d: %s", resp.status, resp.body)
			}
			var wr api.WriteResponse
			if err := json.Unmarshal(resp.body, &wr); err == nil {
				for i, e := range wr.Items {
					if e != nil {
						t.Fatalf("item %d rejected: %v", i, e)
					}
				}
			}
		})
	}
}

func mustToken(tb testing.TB, key []byte, w fsm.WorkerID) string {
	tb.Helper()
	tok, err := server.WorkerToken(key, w)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// TestWorkerToken_Derivation: a derived token is the documented string, is the
// same every time, and differs per worker and per key; bad keys and ids are
// refused.
func TestWorkerToken_Derivation(t *testing.T) {
	key := testKey()
	a1, a2 := mustToken(t, key, "w1"), mustToken(t, key, "w1")
	if a1 != a2 {
		t.Fatalf("two derivations differ: %s %s", a1, a2)
	}
	if !strings.HasPrefix(a1, "bwt1.w1.") || len(a1) != len("bwt1.w1.")+43 {
		t.Fatalf("token %q: want bwt1.w1.<43 base64url letters>", a1)
	}
	if mustToken(t, key, "w2") == a1 || mustToken(t, []byte(strings.Repeat("z", 32)), "w1") == a1 {
		t.Fatal("tokens of another worker or key are the same")
	}
	if mustToken(t, key, "a.b") == mustToken(t, key, "a") {
		t.Fatal("a worker id with a dot collides")
	}
	for _, tt := range []struct {
		name   string
		key    []byte
		worker fsm.WorkerID
	}{
		{"short key", key[:31], "w1"},
		{"no key", nil, "w1"},
		{"empty worker", key, ""},
		{"invalid worker", key, "w 1"},
		{"long worker", key, fsm.WorkerID(strings.Repeat("w", fsm.MaxIDLen+1))},
	} {
		if tok, err := server.WorkerToken(tt.key, tt.worker); err == nil {
			t.Errorf("%s: got token %q, want an error", tt.name, tok)
		}
	}
}

func TestParseWorkerTokenKey(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	for _, tt := range []struct {
		name, in string
		ok       bool
	}{
		{"hex with a newline", hex64 + "\n", true},
		{"longer key", strings.Repeat("01", 64), true},
		{"short", strings.Repeat("ab", 31), false},
		{"not hex", strings.Repeat("zz", 32), false},
		{"odd length", hex64 + "a", false},
		{"empty", "", false},
	} {
		key, err := server.ParseWorkerTokenKey([]byte(tt.in))
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
		if err != nil && !errors.Is(err, server.ErrWorkerTokenKey) {
			t.Errorf("%s: %v does not wrap ErrWorkerTokenKey", tt.name, err)
		}
		if tt.ok && len(key) < server.MinWorkerTokenKeyLen {
			t.Errorf("%s: key of %d bytes", tt.name, len(key))
		}
	}
}

// TestParseToken: the --token forms. A worker token names its worker; the
// two-part worker form is refused with a message that says how to write it.
func TestParseToken(t *testing.T) {
	const secret = "0123456789abcdef"
	tests := []struct {
		in   string
		want server.Token
		err  string
	}{
		{in: "operator:" + secret, want: server.Token{Name: "operator", Role: server.RoleOperator, Secret: secret}},
		{in: "ci:operator:" + secret, want: server.Token{Name: "ci", Role: server.RoleOperator, Secret: secret}},
		{in: "ro:read:" + secret + ":with:colons", want: server.Token{Name: "ro", Role: server.RoleRead, Secret: secret + ":with:colons"}},
		{in: "w1:worker:" + secret, want: server.Token{Name: "w1", Role: server.RoleWorker, Secret: secret, Worker: "w1"}},
		{in: "worker:" + secret, err: "write WORKER:worker:SECRET"},
		{in: "bad id:worker:" + secret, err: "invalid worker id"},
		{in: strings.Repeat("w", fsm.MaxIDLen+1) + ":worker:" + secret, err: "invalid worker id"},
		{in: "bad name:operator:" + secret, err: "name"},
		{in: strings.Repeat("n", server.MaxTokenNameLen+1) + ":operator:" + secret, err: "name"},
		{in: "admin:" + secret, err: "unknown role"},
		{in: "operator:short", err: "shorter than 16 bytes"},
		{in: "operator:bwt1.w1.0123456789abcdef", err: "may not start with"},
		{in: "nosecret", err: "want name:role:secret"},
	}
	for _, tt := range tests {
		got, err := server.ParseToken(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseToken(%.30q) = %+v, %v; want an error containing %q", tt.in, got, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "0123456789abcdef") {
				t.Errorf("ParseToken(%.30q): the error %q shows the secret", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseToken(%.30q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// TestLoadTokens: the token file names the worker of a worker token, and is
// read under the strict JSON rules.
func TestLoadTokens(t *testing.T) {
	const s = `"0123456789abcdef"`
	tests := []struct {
		name, file string
		want       []server.Token
		err        string
	}{
		{name: "every role", file: `{"tokens":[{"name":"ci","role":"operator","token":` + s + `},{"role":"worker","worker":"w1","token":"w1-secret-0123456789"},` +
			`{"name":"dash","role":"read","token":"read-secret-0123456789"}]}`,
			want: []server.Token{{Name: "ci", Role: server.RoleOperator, Secret: "0123456789abcdef"},
				{Name: "w1", Role: server.RoleWorker, Secret: "w1-secret-0123456789", Worker: "w1"},
				{Name: "dash", Role: server.RoleRead, Secret: "read-secret-0123456789"}}},
		{name: "worker token without worker", file: `{"tokens":[{"name":"w1","role":"worker","token":` + s + `}]}`, err: `role worker needs "worker"`},
		{name: "worker with another name", file: `{"tokens":[{"name":"x","role":"worker","worker":"w1","token":` + s + `}]}`, err: "name must be its worker id"},
		{name: "operator naming a worker", file: `{"tokens":[{"name":"ci","role":"operator","worker":"w1","token":` + s + `}]}`, err: "only worker tokens name a worker"},
		{name: "operator without a name", file: `{"tokens":[{"role":"operator","token":` + s + `}]}`, err: "name"},
		{name: "unknown key", file: `{"tokens":[{"name":"ci","role":"operator","secret":` + s + `}]}`, err: `unknown key "secret"`},
		{name: "wrong case", file: `{"Tokens":[]}`, err: `unknown key "Tokens"`},
		{name: "unknown role", file: `{"tokens":[{"name":"ci","role":"admin","token":` + s + `}]}`, err: "unknown role"},
		{name: "not JSON", file: `tokens: []`, err: "malformed JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.json")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := server.LoadTokens(path)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("LoadTokens = %+v, %v; want an error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("LoadTokens = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestConfig_RefusesBadAuth: the server refuses tokens and keys it could not
// use safely.
func TestConfig_RefusesBadAuth(t *testing.T) {
	const secret = "0123456789abcdef"
	tests := []struct {
		name string
		cfg  server.Config
		err  string
	}{
		{"worker token without a worker", server.Config{Tokens: []server.Token{{Name: "w", Role: server.RoleWorker, Secret: secret}}}, "must name its worker"},
		{"short key", server.Config{WorkerTokenKey: make([]byte, 31)}, "WorkerTokenKey"},
		{"duplicate secret", server.Config{Tokens: []server.Token{{Name: "a", Role: server.RoleRead, Secret: secret}, {Name: "b", Role: server.RoleRead, Secret: secret}}}, "duplicate"},
		{"negative body timeout", server.Config{BodyTimeout: -1}, "BodyTimeout"},
		{"drain timeout over a day", server.Config{DrainTimeout: fsm.MaxDrainTimeout + 1}, "DrainTimeout"},
		{"negative drain timeout", server.Config{DrainTimeout: -1}, "DrainTimeout"},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: Validate() = %v, want an error containing %q", tt.name, err, tt.err)
		}
	}
}
