package main

import (
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
)

func parseServer(t *testing.T, args ...string) (nodeConfig, error) {
	t.Helper()
	f := newFlags("server", "baton server", "", 0, 0)
	f.lookupEnv = func(string) (string, bool) { return "", false }
	var s serverFlags
	s.register(f)
	if _, err := f.parse(args); err != nil {
		return nodeConfig{}, err
	}
	return s.config(nil)
}

func TestServerFlags_MapOntoConfigs(t *testing.T) {
	cfg, err := parseServer(t, "--id", "n2", "--raft-addr", "127.0.0.1:7002", "--raft-advertise", "10.0.0.2:7002",
		"--http-addr", "127.0.0.1:7102", "--join", "http://127.0.0.1:7101,http://127.0.0.1:7103",
		"--session-ttl", "3s", "--heartbeat-interval", "500ms", "--drain-timeout", "7s", "--stabilization-window", "1s",
		"--max-handoffs", "9", "--max-handoffs-per-worker", "3", "--token", "operator:0123456789abcdef", "--token", "ro:read:fedcba9876543210",
		"--raft-election-timeout", "2s", "--audit-max-events", "5000", "--max-wait", "1m",
		"--digest-interval", "30s", "--peer-token", "peer-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	r, c, a := cfg.Raft, cfg.Controller, cfg.API
	switch {
	case r.NodeID != "n2", r.DataDir != filepath.Join("data", "n2"), r.RaftAddr != "127.0.0.1:7002", r.AdvertiseAddr != "10.0.0.2:7002",
		r.Bootstrap, r.ElectionTimeout != 2*time.Second, r.Audit.MaxEvents != 5000, r.DigestInterval != 30*time.Second:
		t.Errorf("raft config %+v", r)
	case c.SessionTTL != 3*time.Second, c.HeartbeatInterval != 500*time.Millisecond, c.DrainTimeout != 7*time.Second,
		c.StabilizationWindow != time.Second, c.MaxHandoffs != 9, c.MaxHandoffsPerWorker != 3:
		t.Errorf("controller config %+v", c)
	case len(a.Tokens) != 2, a.Tokens[0].Role != server.RoleOperator, a.Tokens[1].Name != "ro", a.DrainTimeout != 7*time.Second, a.MaxWait != time.Minute,
		a.DigestCheckInterval != 30*time.Second, a.PeerToken != "peer-0123456789abcdef":
		t.Errorf("api config %+v", a)
	case cfg.HTTPAddr != "127.0.0.1:7102", len(cfg.Join) != 2, cfg.JoinToken != "0123456789abcdef":
		t.Errorf("node config %+v", cfg)
	}
}

func TestServerFlags_Refused(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no id", []string{"--bootstrap"}, "--id is required"},
		{"bootstrap and join", []string{"--id", "n1", "--bootstrap", "--join", "http://127.0.0.1:7101"}, "exclude each other"},
		{"unauthenticated API beyond loopback", []string{"--id", "n1", "--http-addr", "0.0.0.0:7101"}, "not a loopback address"},
		{"unauthenticated API on every interface", []string{"--id", "n1", "--http-addr", ":7101"}, "not a loopback address"},
		{"bad token", []string{"--id", "n1", "--token", "admin:x"}, "unknown role"},
		{"partial TLS", []string{"--id", "n1", "--raft-tls-cert", "c.pem"}, "go together"},
		{"short token secret", []string{"--id", "n1", "--token", "operator:short"}, "shorter than 16 bytes"},
		{"session TTL below three heartbeats", []string{"--id", "n1", "--session-ttl", "1s", "--heartbeat-interval", "1s"}, "SessionTTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseServer(t, tt.args...)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a usage error saying %q", err, tt.want)
			}
		})
	}
}

func TestServerFlags_TokensAllowAnyAddress(t *testing.T) {
	if _, err := parseServer(t, "--id", "n1", "--http-addr", "0.0.0.0:7101", "--token", "operator:0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"127.0.0.1:7101", "[::1]:7101", "localhost:0", "127.0.0.2:1"} {
		if err := requireLoopback(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// TestServerFlags_RangeEdges checks the values at the edges of each range are
// taken as given, the documented zeroes included.
func TestServerFlags_RangeEdges(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(nodeConfig) bool
	}{
		{"stabilization window 0 acts at once", []string{"--stabilization-window", "0"}, func(c nodeConfig) bool { return c.Controller.StabilizationWindow == 0 }},
		{"audit max age 0 is no age bound", []string{"--audit-max-age", "0"}, func(c nodeConfig) bool { return c.Raft.Audit.MaxAge == 0 }},
		{"trailing logs 0 keeps none", []string{"--trailing-logs", "0"}, func(c nodeConfig) bool { return c.Raft.TrailingLogs == 0 }},
		{"drain timeout at the state machine's bound", []string{"--drain-timeout", "24h"}, func(c nodeConfig) bool {
			return c.Controller.DrainTimeout == 24*time.Hour && c.API.DrainTimeout == 24*time.Hour
		}},
		{"max body bytes at its floor", []string{"--max-body-bytes", "1024"}, func(c nodeConfig) bool { return c.API.MaxBodyBytes == 1024 }},
		{"max wait at its floor", []string{"--max-wait", "1s"}, func(c nodeConfig) bool { return c.API.MaxWait == time.Second }},
		{"shutdown timeout of 1ns", []string{"--shutdown-timeout", "1ns"}, func(nodeConfig) bool { return true }},
		{"raft heartbeat timeout at raft's minimum", []string{"--raft-heartbeat-timeout", "5ms", "--raft-election-timeout", "5ms", "--raft-leader-lease-timeout", "5ms"},
			func(c nodeConfig) bool { return c.Raft.HeartbeatTimeout == 5*time.Millisecond }},
		{"a 128-byte node id", []string{"--id", strings.Repeat("n", 128)}, func(c nodeConfig) bool { return len(c.Raft.NodeID) == 128 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServer(t, append([]string{"--id", "n1"}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}

// TestServerFlags_Join: --join takes host:port (http://, or https:// when
// this node's API uses TLS) or an API base URL; anything else stops the
// server at flag parsing with exit code 2, naming the value.
func TestServerFlags_Join(t *testing.T) {
	tests := []struct {
		name   string
		join   string
		tlsAPI bool
		want   []string // nil: refused
	}{
		{name: "host:port means http", join: "127.0.0.1:7101", want: []string{"http://127.0.0.1:7101"}},
		{name: "host:port means https with an HTTPS API", join: "n1.example:7101", tlsAPI: true, want: []string{"https://n1.example:7101"}},
		{name: "an IPv6 host:port", join: "[::1]:7101", want: []string{"http://[::1]:7101"}},
		{name: "a base URL stays", join: "http://127.0.0.1:7101", want: []string{"http://127.0.0.1:7101"}},
		{name: "an explicit scheme wins over the API's", join: "http://n1.example:7101", tlsAPI: true, want: []string{"http://n1.example:7101"}},
		{name: "a trailing slash goes", join: "https://n1.example:7101/", want: []string{"https://n1.example:7101"}},
		{name: "a URL without a port", join: "https://n1.example", want: []string{"https://n1.example"}},
		{name: "several, mixed", join: "127.0.0.1:7101, http://127.0.0.1:7102", want: []string{"http://127.0.0.1:7101", "http://127.0.0.1:7102"}},
		{name: "a host without a port", join: "127.0.0.1"},
		{name: "an empty host", join: ":7101"},
		{name: "a host with a space (found by FuzzJoinURL)", join: "a b:7101"},
		{name: "port 0", join: "127.0.0.1:0"},
		{name: "a port out of range", join: "127.0.0.1:70000"},
		{name: "a named port", join: "127.0.0.1:http"},
		{name: "another scheme", join: "ftp://127.0.0.1:7101"},
		{name: "a URL with a path", join: "http://127.0.0.1:7101/v1"},
		{name: "a URL with a query", join: "http://127.0.0.1:7101?x=1"},
		{name: "a URL with user info", join: "http://u:p@127.0.0.1:7101"},
		{name: "a URL without a host", join: "http://:7101"},
		{name: "a URL with port 0", join: "http://127.0.0.1:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := joinURLs(splitList(tt.join), tt.tlsAPI)
			if tt.want == nil {
				if err == nil || !strings.Contains(err.Error(), "--join") {
					t.Fatalf("joinURLs(%q) = %v, %v; want an error naming --join", tt.join, got, err)
				}
				// Through the flags: a usage error (exit code 2) at start.
				_, err := parseServer(t, "--id", "n2", "--join", tt.join)
				var ee *exitError
				if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "--join") {
					t.Fatalf("baton server --join %q: %v, want a usage error naming --join", tt.join, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("joinURLs(%q) = %q, %v; want %q", tt.join, got, err, tt.want)
			}
			if tt.tlsAPI {
				return // the flags need certificate files for that
			}
			cfg, err := parseServer(t, "--id", "n2", "--join", tt.join)
			if err != nil || !slices.Equal(cfg.Join, tt.want) {
				t.Fatalf("baton server --join %q: Join %q, %v; want %q", tt.join, cfg.Join, err, tt.want)
			}
		})
	}
}

// TestServer_BadJoinExitsAtOnce runs the command itself: a bad --join is a
// usage error before anything starts (it used to log and run unjoined).
func TestServer_BadJoinExitsAtOnce(t *testing.T) {
	err := run([]string{"server", "--id", "n2", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0",
		"--raft-addr", "127.0.0.1:0", "--join", "127.0.0.1"}, io.Discard, io.Discard)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("baton server --join 127.0.0.1: %v, want exit code 2", err)
	}
}

// FuzzJoinURL: whatever --join accepts is a base URL the API client accepts,
// and accepting it again changes nothing.
func FuzzJoinURL(f *testing.F) {
	for _, s := range []string{"127.0.0.1:7101", "[::1]:7101", "http://n1:7101/", "https://n1", "n1:0", "http://:1", "ftp://n1:1", "[::1]", "http://[::1]:7101"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, a string, tlsAPI bool) {
		scheme := "http://"
		if tlsAPI {
			scheme = "https://"
		}
		u, err := joinURL(a, scheme)
		if err != nil {
			return
		}
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			t.Fatalf("joinURL(%q) = %q: no http(s) scheme", a, u)
		}
		c, err := client.New([]string{u})
		if err != nil {
			t.Fatalf("joinURL(%q) = %q, which the API client refuses: %v", a, u, err)
		}
		c.Close()
		if again, err := joinURL(u, scheme); err != nil || again != u {
			t.Fatalf("joinURL(%q) = %q, but joinURL(%q) = %q, %v", a, u, u, again, err)
		}
	})
}
