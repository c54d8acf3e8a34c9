package main

import (
	"strings"
	"testing"
)

// TestServer_RaftWithoutTLSBeyondLoopback: without raft TLS a node refuses to
// start on a non-loopback raft address, naming the flags that fix it;
// --raft-insecure is the explicit opt-in and maps onto raftnode's InsecureRaft.
func TestServer_RaftWithoutTLSBeyondLoopback(t *testing.T) {
	base := []string{"--id", "n1", "--bootstrap", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--raft-addr", "0.0.0.0:0"}
	cfg, err := parseServer(t, base...)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Raft.InsecureRaft {
		t.Fatal("InsecureRaft set without --raft-insecure")
	}
	n, err := startNode(cfg)
	if err == nil {
		n.shutdown(t.Context())
		t.Fatal("a node without raft TLS started on 0.0.0.0")
	}
	for _, want := range []string{"0.0.0.0:0", "not a loopback address", "--raft-tls-cert", "--raft-insecure"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	cfg, err = parseServer(t, append(base, "--raft-insecure")...)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Raft.InsecureRaft {
		t.Fatal("--raft-insecure did not set InsecureRaft")
	}
}
