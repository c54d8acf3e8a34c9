package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
)

// writeFile writes content to a new file in a test directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestToken_NewKeyAndIssue: 'baton token new-key' prints a fresh hex key that
// 'baton token issue' and the server accept, and 'issue' prints the token the
// server derives for that worker, the same every time.
func TestToken_NewKeyAndIssue(t *testing.T) {
	var k1, k2 bytes.Buffer
	if err := tokenCmd([]string{"new-key"}, &k1); err != nil {
		t.Fatal(err)
	}
	if err := tokenCmd([]string{"new-key"}, &k2); err != nil {
		t.Fatal(err)
	}
	if k1.String() == k2.String() {
		t.Fatal("two new keys are the same")
	}
	raw, err := hex.DecodeString(strings.TrimSuffix(k1.String(), "\n"))
	if err != nil || len(raw) != server.MinWorkerTokenKeyLen {
		t.Fatalf("new-key printed %q: want %d bytes in hex and a newline", k1.String(), server.MinWorkerTokenKeyLen)
	}
	keyFile := writeFile(t, "worker.key", k1.String())
	var t1, t2 bytes.Buffer
	for _, out := range []*bytes.Buffer{&t1, &t2} {
		if err := tokenCmd([]string{"issue", "--worker", "w1", "--key-file", keyFile}, out); err != nil {
			t.Fatal(err)
		}
	}
	want, err := server.WorkerToken(raw, "w1")
	if err != nil {
		t.Fatal(err)
	}
	if t1.String() != want+"\n" || t2.String() != t1.String() {
		t.Fatalf("issue printed %q then %q, want %q", t1.String(), t2.String(), want)
	}
	// The server started with this key file holds the same key.
	cfg, err := parseServer(t, "--id", "n1", "--worker-token-key", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cfg.API.WorkerTokenKey, raw) {
		t.Fatalf("server key %x, want %x", cfg.API.WorkerTokenKey, raw)
	}
}

func TestToken_Refused(t *testing.T) {
	key := writeFile(t, "worker.key", strings.Repeat("ab", 32)+"\n")
	short := writeFile(t, "short.key", strings.Repeat("ab", 16))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no verb", nil, "usage"},
		{"unknown verb", []string{"mint"}, "unknown 'token' verb"},
		{"issue without a worker", []string{"issue", "--key-file", key}, "needs --worker and --key-file"},
		{"issue without a key", []string{"issue", "--worker", "w1"}, "needs --worker and --key-file"},
		{"issue an invalid worker id", []string{"issue", "--worker", "w 1", "--key-file", key}, "invalid worker id"},
		{"issue a 129-byte worker id", []string{"issue", "--worker", strings.Repeat("w", fsm.MaxIDLen+1), "--key-file", key}, "invalid worker id"},
		{"issue with a short key", []string{"issue", "--worker", "w1", "--key-file", short}, "want at least 32"},
		{"issue with no key file", []string{"issue", "--worker", "w1", "--key-file", filepath.Join(t.TempDir(), "none")}, "no such file"},
		{"new-key with an argument", []string{"new-key", "extra"}, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := tokenCmd(tt.args, &out)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a usage error containing %q", err, tt.want)
			}
			if out.Len() != 0 {
				t.Fatalf("printed %q on an error", out.String())
			}
		})
	}
}

// TestServerFlags_WorkerTokens: a worker token must name its worker, in
// --token and in --token-file; the key of derived tokens comes from a file;
// any of them authenticates the API, so it may listen beyond loopback.
func TestServerFlags_WorkerTokens(t *testing.T) {
	const secret = "0123456789abcdef"
	good := writeFile(t, "worker.key", strings.Repeat("cd", 32))
	short := writeFile(t, "short.key", "abcd")
	tokenFile := writeFile(t, "tokens.json", `{"tokens":[{"role":"worker","worker":"w2","token":"w2-secret-0123456789"}]}`)
	noWorker := writeFile(t, "tokens.json", `{"tokens":[{"name":"w2","role":"worker","token":"w2-secret-0123456789"}]}`)

	cfg, err := parseServer(t, "--id", "n1", "--http-addr", "0.0.0.0:7101", "--http-advertise", "http://10.0.0.1:7101",
		"--token", "w1:worker:"+secret, "--token-file", tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	toks := cfg.API.Tokens
	if len(toks) != 2 || toks[0].Worker != "w1" || toks[0].Name != "w1" || toks[1].Worker != "w2" || toks[1].Role != server.RoleWorker {
		t.Fatalf("tokens %+v", toks)
	}
	if _, err := parseServer(t, "--id", "n1", "--http-addr", "0.0.0.0:7101", "--worker-token-key", good); err != nil {
		t.Fatalf("a worker token key alone authenticates the API: %v", err)
	}

	refused := []struct {
		name string
		args []string
		want string
	}{
		{"two-part worker token", []string{"--token", "worker:" + secret}, "write WORKER:worker:SECRET"},
		{"worker token naming an invalid worker", []string{"--token", "bad id:worker:" + secret}, "invalid worker id"},
		{"operator token with an invalid name", []string{"--token", "a b:operator:" + secret}, "name"},
		{"token file without the worker", []string{"--token-file", noWorker}, `role worker needs "worker"`},
		{"short worker token key", []string{"--worker-token-key", short}, "--worker-token-key"},
		{"missing worker token key", []string{"--worker-token-key", filepath.Join(t.TempDir(), "none")}, "--worker-token-key"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseServer(t, append([]string{"--id", "n1"}, tt.args...)...)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a usage error saying %q", err, tt.want)
			}
		})
	}
}
