package raftnode_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/batonhq/baton/raftnode"
)

func validConfig() raftnode.Config {
	cfg := raftnode.DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.APIAddr = "n1", "/nonexistent", "http://127.0.0.1:7101"
	return cfg
}

// TestConfig_RaftWithoutTLSOnlyOnLoopback: without TLS the raft port is
// unauthenticated, so it may listen and be advertised only on loopback unless
// the operator opts in with InsecureRaft; with TLS any address is fine.
func TestConfig_RaftWithoutTLSOnlyOnLoopback(t *testing.T) {
	withTLS := &tls.Config{Certificates: []tls.Certificate{{}}}
	tests := []struct {
		name      string
		raft, adv string
		insecure  bool
		tls       *tls.Config
		refused   string // the field named in the refusal, "" when accepted
	}{
		{name: "IPv4 loopback", raft: "127.0.0.1:7001"},
		{name: "any of 127.0.0.0/8", raft: "127.0.0.2:7001", adv: "127.1.2.3:7001"},
		{name: "IPv6 loopback", raft: "[::1]:7001"},
		{name: "localhost", raft: "localhost:7001", adv: "localhost:7001"},
		{name: "port 0", raft: "127.0.0.1:0"},
		{name: "every IPv4 interface", raft: "0.0.0.0:7001", adv: "127.0.0.1:7001", refused: "RaftAddr"},
		{name: "every IPv6 interface", raft: "[::]:7001", adv: "[::1]:7001", refused: "RaftAddr"},
		{name: "every interface, no host", raft: ":7001", adv: "127.0.0.1:7001", refused: "RaftAddr"},
		{name: "a LAN address", raft: "10.0.0.1:7001", refused: "RaftAddr"},
		{name: "a host name", raft: "node1.example:7001", refused: "RaftAddr"},
		{name: "advertised beyond loopback", raft: "127.0.0.1:7001", adv: "10.0.0.1:7001", refused: "AdvertiseAddr"},
		{name: "opted in", raft: "0.0.0.0:7001", adv: "10.0.0.1:7001", insecure: true},
		{name: "TLS", raft: "0.0.0.0:7001", adv: "10.0.0.1:7001", tls: withTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			cfg.RaftAddr, cfg.AdvertiseAddr, cfg.InsecureRaft, cfg.TLS = tt.raft, tt.adv, tt.insecure, tt.tls
			err := cfg.Validate()
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, want := range []string{tt.refused, "not a loopback address", "--raft-tls-cert", "--raft-tls-key", "--raft-tls-ca", "--raft-insecure"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestConfig_MaxCommandBytes(t *testing.T) {
	tests := []struct {
		bytes int64
		ok    bool
	}{
		{0, false}, {64<<10 - 1, false}, {64 << 10, true}, {8 << 20, true}, {64 << 20, true}, {64<<20 + 1, false},
	}
	for _, tt := range tests {
		cfg := validConfig()
		cfg.MaxCommandBytes = tt.bytes
		if err := cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("MaxCommandBytes %d: %v, want ok=%v", tt.bytes, err, tt.ok)
		}
	}
}
