package main

import (
	"bytes"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
	"time"
)

func testFlags(env map[string]string) (*flagSet, *bytes.Buffer) {
	f := newFlags("thing", "baton thing ARG [flags]", "Does a thing.", 0, -1)
	var out bytes.Buffer
	f.out = &out
	f.lookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return f, &out
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"addr": "BATON_ADDR", "raft-tls-cert": "BATON_RAFT_TLS_CERT", "worker-id": "BATON_WORKER_ID"} {
		if got := envName(in); got != want {
			t.Errorf("envName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFlags_EnvironmentAndCommandLine(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		addr    string
		wait    time.Duration
		on      bool
		tokens  []string
		pos     []string
		wantErr bool
	}{
		{name: "defaults", addr: "http://default", wait: time.Second},
		{name: "environment fills unset flags", env: map[string]string{"BATON_ADDR": "http://env", "BATON_WAIT": "3s", "BATON_ON": "true"},
			addr: "http://env", wait: 3 * time.Second, on: true},
		{name: "the command line wins", args: []string{"--addr", "http://flag"}, env: map[string]string{"BATON_ADDR": "http://env"},
			addr: "http://flag", wait: time.Second},
		{name: "flags after positional arguments", args: []string{"p1", "--on", "p2", "-wait=2s"},
			addr: "http://default", wait: 2 * time.Second, on: true, pos: []string{"p1", "p2"}},
		{name: "double dash ends flags", args: []string{"--on", "--", "--not-a-flag"},
			addr: "http://default", wait: time.Second, on: true, pos: []string{"--not-a-flag"}},
		{name: "repeatable list from flags and environment", args: []string{"--token", "a:1", "--token", "b:2,c:3"},
			addr: "http://default", wait: time.Second, tokens: []string{"a:1", "b:2", "c:3"}},
		{name: "list from the environment", env: map[string]string{"BATON_TOKEN": "a:1,b:2"},
			addr: "http://default", wait: time.Second, tokens: []string{"a:1", "b:2"}},
		{name: "bad environment value", env: map[string]string{"BATON_WAIT": "soon"}, wantErr: true},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := testFlags(tt.env)
			addr := f.String("addr", "http://default", "address")
			wait := f.Duration("wait", time.Second, "wait")
			on := f.Bool("on", false, "on")
			var tokens stringList
			f.Var(&tokens, "token", "token")
			pos, err := f.parse(tt.args)
			if tt.wantErr {
				var ee *exitError
				if !errors.As(err, &ee) || ee.code != 2 {
					t.Fatalf("got %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *addr != tt.addr || *wait != tt.wait || *on != tt.on || !slices.Equal(tokens, tt.tokens) || !slices.Equal(pos, tt.pos) {
				t.Errorf("got addr=%s wait=%s on=%v tokens=%v pos=%v", *addr, *wait, *on, tokens, pos)
			}
		})
	}
}

func TestFlags_PositionalBounds(t *testing.T) {
	f := newFlags("drain", "baton drain WORKER", "", 1, 1)
	f.lookupEnv = func(string) (string, bool) { return "", false }
	for _, args := range [][]string{nil, {"a", "b"}} {
		if _, err := f.parse(args); err == nil {
			t.Errorf("%v: want a usage error", args)
		}
	}
}

func TestFlags_HelpNamesEveryVariable(t *testing.T) {
	f, out := testFlags(nil)
	f.String("raft-addr", "127.0.0.1:7001", "raft listen address")
	f.Duration("session-ttl", 5*time.Second, "session TTL")
	if _, err := f.parse([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("got %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"Usage: baton thing ARG [flags]", "Does a thing.", "--raft-addr string", "env: BATON_RAFT_ADDR",
		"default: 127.0.0.1:7001", "--session-ttl duration", "env: BATON_SESSION_TTL", "default: 5s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}

// TestEveryCommandHasHelp runs --help on every command and verb.
func TestEveryCommandHasHelp(t *testing.T) {
	var cmds [][]string
	for _, c := range commands() {
		cmds = append(cmds, []string{c.name, "--help"})
	}
	for _, v := range []string{"declare", "list", "get", "remove", "move"} {
		cmds = append(cmds, []string{"partitions", v, "--help"})
	}
	cmds = append(cmds, []string{"cluster", "join", "--help"}, []string{"cluster", "remove", "--help"}, []string{"help", "server"})
	for _, args := range cmds {
		if err := run(args, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
			t.Errorf("baton %s: %v", strings.Join(args, " "), err)
		}
	}
	if err := run([]string{"nope"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("an unknown command must fail")
	}
}
