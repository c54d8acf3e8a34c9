package main

import (
	"bytes"
	"errors"
	"flag"
	"math"
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
	if n := strings.Count(out.String(), "Usage:"); n != 1 {
		t.Errorf("the usage is printed %d times", n)
	}
}

func TestFlags_ErrorsPrintNoUsage(t *testing.T) {
	f, out := testFlags(nil)
	f.Duration("wait", time.Second, "wait")
	if _, err := f.parse([]string{"--wait", "soon"}); err == nil || !strings.Contains(err.Error(), "--help") {
		t.Fatalf("got %v, want an error pointing at --help", err)
	}
	if out.Len() != 0 {
		t.Errorf("a parse error printed:\n%s", out)
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

func TestBoundedFlags(t *testing.T) {
	tests := []struct {
		name    string
		add     func(f *flagSet) func() any // registers the flag, returns its value
		arg     string
		want    any
		wantErr string
	}{
		{name: "positive duration refuses 0", add: positiveDur, arg: "0s", wantErr: "must be > 0"},
		{name: "positive duration refuses negative", add: positiveDur, arg: "-1s", wantErr: "must be > 0"},
		{name: "positive duration takes 1ns", add: positiveDur, arg: "1ns", want: time.Nanosecond},
		{name: "bounded duration takes its top", add: drainDur, arg: "24h", want: 24 * time.Hour},
		{name: "bounded duration refuses past its top", add: drainDur, arg: "2500000h", wantErr: "must be 0s to 24h0m0s"},
		{name: "bounded duration takes a meaningful 0", add: drainDur, arg: "0", want: time.Duration(0)},
		{name: "bounded duration refuses garbage", add: drainDur, arg: "soon", wantErr: "must be 0s to 24h0m0s"},
		{name: "uint32 refuses a value that would wrap", add: weight, arg: "4294967297", wantErr: "must be 1 to 1000"},
		{name: "uint32 refuses 0 that would silently mean 1", add: weight, arg: "0", wantErr: "must be 1 to 1000"},
		{name: "uint32 refuses negative", add: weight, arg: "-1", wantErr: "must be 1 to 1000"},
		{name: "uint32 takes its top", add: weight, arg: "1000", want: uint32(1000)},
		{name: "int refuses below its floor", add: atLeast1024, arg: "0", wantErr: "must be >= 1024"},
		{name: "int takes its floor", add: atLeast1024, arg: "1024", want: int64(1024)},
		{name: "uint64 refuses negative", add: anyUint64, arg: "-1", wantErr: "must be >= 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := testFlags(nil)
			get := tt.add(f)
			_, err := f.parse([]string{"--x", tt.arg})
			if tt.wantErr != "" {
				var ee *exitError
				if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "-x") {
					t.Fatalf("got %v, want a usage error naming -x and saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := get(); got != tt.want {
				t.Errorf("got %v (%T), want %v (%T)", got, got, tt.want, tt.want)
			}
		})
	}
}

func positiveDur(f *flagSet) func() any {
	var d time.Duration
	f.positiveDurationVar(&d, "x", time.Second, "x")
	return func() any { return d }
}

func drainDur(f *flagSet) func() any {
	var d time.Duration
	f.durationVar(&d, "x", 0, 0, 24*time.Hour, "x")
	return func() any { return d }
}

func weight(f *flagSet) func() any {
	var w uint32
	f.uint32Var(&w, "x", 1, 1, 1000, "x")
	return func() any { return w }
}

func atLeast1024(f *flagSet) func() any {
	var n int64
	f.int64Var(&n, "x", 4096, 1024, math.MaxInt64, "x")
	return func() any { return n }
}

func anyUint64(f *flagSet) func() any {
	var n uint64
	f.uint64Var(&n, "x", 0, 0, math.MaxUint64, "x")
	return func() any { return n }
}

func TestBoundedFlags_EnvironmentAndHelp(t *testing.T) {
	f, _ := testFlags(map[string]string{"BATON_X": "-1s"})
	var d time.Duration
	f.positiveDurationVar(&d, "x", 20*time.Second, "bound of the thing")
	_, err := f.parse(nil)
	if err == nil || !strings.Contains(err.Error(), "BATON_X") || !strings.Contains(err.Error(), "--x") || !strings.Contains(err.Error(), "must be > 0") {
		t.Fatalf("got %v, want an error naming BATON_X and --x", err)
	}
	f, out := testFlags(nil)
	f.positiveDurationVar(&d, "x", 20*time.Second, "bound of the thing")
	if _, err := f.parse([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	for _, want := range []string{"--x duration", "range: > 0", "default: 20s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}

// TestOutOfRangeIsAUsageError runs every verb with a value out of range: each
// is a usage error (exit 2) that names the flag or argument, and none reaches
// a server (the address given is unreachable, and the tokens are unset).
func TestOutOfRangeIsAUsageError(t *testing.T) {
	const nowhere = "http://127.0.0.1:1"
	long := strings.Repeat("a", 129)
	tests := []struct {
		name string
		args []string
		want string // in the error
	}{
		// baton server
		{"shutdown timeout negative", []string{"server", "--id", "n1", "--shutdown-timeout", "-1s"}, "-shutdown-timeout"},
		{"shutdown timeout 0", []string{"server", "--id", "n1", "--shutdown-timeout", "0"}, "-shutdown-timeout"},
		{"max wait 0 would silently be the default", []string{"server", "--id", "n1", "--max-wait", "0"}, "-max-wait"},
		{"max wait below the server's 1s", []string{"server", "--id", "n1", "--max-wait", "500ms"}, "-max-wait"},
		{"max body bytes 0 would silently be the default", []string{"server", "--id", "n1", "--max-body-bytes", "0"}, "-max-body-bytes"},
		{"max body bytes below 1 KiB", []string{"server", "--id", "n1", "--max-body-bytes", "100"}, "-max-body-bytes"},
		{"session TTL 0", []string{"server", "--id", "n1", "--session-ttl", "0"}, "-session-ttl"},
		{"heartbeat interval 0", []string{"server", "--id", "n1", "--heartbeat-interval", "0"}, "-heartbeat-interval"},
		{"server drain timeout past the state machine's bound", []string{"server", "--id", "n1", "--drain-timeout", "25h"}, "-drain-timeout"},
		{"server drain timeout 0", []string{"server", "--id", "n1", "--drain-timeout", "0"}, "-drain-timeout"},
		{"stabilization window negative", []string{"server", "--id", "n1", "--stabilization-window", "-1s"}, "-stabilization-window"},
		{"max handoffs 0", []string{"server", "--id", "n1", "--max-handoffs", "0"}, "-max-handoffs"},
		{"max handoffs per worker 0", []string{"server", "--id", "n1", "--max-handoffs-per-worker", "0"}, "-max-handoffs-per-worker"},
		{"controller tick 0", []string{"server", "--id", "n1", "--controller-tick", "0"}, "-controller-tick"},
		{"raft heartbeat timeout below raft's minimum", []string{"server", "--id", "n1", "--raft-heartbeat-timeout", "1ms"}, "-raft-heartbeat-timeout"},
		{"raft election timeout 0", []string{"server", "--id", "n1", "--raft-election-timeout", "0"}, "-raft-election-timeout"},
		{"raft leader lease timeout 0", []string{"server", "--id", "n1", "--raft-leader-lease-timeout", "0"}, "-raft-leader-lease-timeout"},
		{"raft commit timeout 0", []string{"server", "--id", "n1", "--raft-commit-timeout", "0"}, "-raft-commit-timeout"},
		{"snapshot interval 0", []string{"server", "--id", "n1", "--snapshot-interval", "0"}, "-snapshot-interval"},
		{"snapshot threshold 0", []string{"server", "--id", "n1", "--snapshot-threshold", "0"}, "-snapshot-threshold"},
		{"trailing logs negative", []string{"server", "--id", "n1", "--trailing-logs", "-1"}, "-trailing-logs"},
		{"snapshot retain 0", []string{"server", "--id", "n1", "--snapshot-retain", "0"}, "-snapshot-retain"},
		{"apply timeout 0", []string{"server", "--id", "n1", "--apply-timeout", "0"}, "-apply-timeout"},
		{"audit max events 0", []string{"server", "--id", "n1", "--audit-max-events", "0"}, "-audit-max-events"},
		{"audit max age negative", []string{"server", "--id", "n1", "--audit-max-age", "-1h"}, "-audit-max-age"},
		{"node id the state machine refuses", []string{"server", "--id", "bad id!"}, "--id: invalid node id"},
		{"node id too long", []string{"server", "--id", long}, "--id: invalid node id"},
		{"API address too long to register", []string{"server", "--id", "n1", "--http-advertise", "http://" + strings.Repeat("h", 300)}, "--http-advertise"},
		// client verbs
		{"timeout 0", []string{"status", "--addr", nowhere, "--timeout", "0"}, "-timeout"},
		{"move drain timeout that overflows", []string{"move", "p1", "--to", "w1", "--addr", nowhere, "--drain-timeout", "2500000h"}, "-drain-timeout"},
		{"move drain timeout negative", []string{"move", "p1", "--to", "w1", "--addr", nowhere, "--drain-timeout", "-1s"}, "-drain-timeout"},
		{"move drain timeout below the wire's 1ms", []string{"move", "p1", "--to", "w1", "--addr", nowhere, "--drain-timeout", "500us"}, "--drain-timeout"},
		{"partitions move drain timeout past 24h", []string{"partitions", "move", "p1", "--to", "w1", "--addr", nowhere, "--drain-timeout", "25h"}, "-drain-timeout"},
		{"move to an invalid worker", []string{"move", "p1", "--to", "w 1", "--addr", nowhere}, "--to: invalid worker id"},
		{"move an invalid partition", []string{"move", long, "--to", "w1", "--addr", nowhere}, "PARTITION: invalid partition id"},
		{"move with a reason holding ESC", []string{"move", "p1", "--to", "w1", "--addr", nowhere, "--reason", "x\x1b[31m"}, "--reason"},
		{"move with a reason too long", []string{"move", "p1", "--to", "w1", "--addr", nowhere, "--reason", strings.Repeat("r", 129)}, "--reason"},
		{"pin to an invalid worker", []string{"pin", "p1", "w\x1b", "--addr", nowhere}, "WORKER: invalid worker id"},
		{"drain an invalid worker", []string{"drain", "w/1", "--addr", nowhere}, "WORKER: invalid worker id"},
		{"remove an invalid worker", []string{"remove-worker", ".w", "--addr", nowhere}, "WORKER: invalid worker id"},
		{"get an invalid partition", []string{"partitions", "get", "p 1", "--addr", nowhere}, "PARTITION: invalid partition id"},
		{"remove an invalid partition", []string{"partitions", "remove", "p 1", "--addr", nowhere}, "PARTITION: invalid partition id"},
		{"declare weight that would wrap to 1", []string{"partitions", "declare", "--ids", "a", "--template", "o.{{.Partition}}", "--weight", "4294967297", "--addr", nowhere}, "-weight"},
		{"declare count above the partition limit", []string{"partitions", "declare", "--prefix", "p", "--count", "1000001", "--template", "o.{{.Partition}}", "--addr", nowhere}, "at most 1000000"},
		{"audit limit negative", []string{"audit", "--limit", "-1", "--addr", nowhere}, "-limit"},
		{"audit from after to", []string{"audit", "--from", "5", "--to", "3", "--addr", nowhere}, "--from 5 is after --to 3"},
		{"audit since after until", []string{"audit", "--since", "1m", "--until", "1h", "--addr", nowhere}, "--since 1m is after --until 1h"},
		{"audit for an invalid worker", []string{"audit", "--worker", "w 1", "--addr", nowhere}, "--worker: invalid worker id"},
		{"cluster join with an invalid id", []string{"cluster", "join", "--id", "bad id!", "--raft-addr", "127.0.0.1:7004", "--api-addr", "http://127.0.0.1:7104", "--addr", nowhere}, "--id: invalid node id"},
		{"cluster join with a 300-byte id", []string{"cluster", "join", "--id", strings.Repeat("n", 300), "--raft-addr", "127.0.0.1:7004", "--api-addr", "http://127.0.0.1:7104", "--addr", nowhere}, "--id: invalid node id"},
		{"cluster join with a bad raft address", []string{"cluster", "join", "--id", "n4", "--raft-addr", "nowhere", "--api-addr", "http://127.0.0.1:7104", "--addr", nowhere}, "--raft-addr"},
		{"cluster join with a long API address", []string{"cluster", "join", "--id", "n4", "--raft-addr", "127.0.0.1:7004", "--api-addr", "http://" + strings.Repeat("h", 300), "--addr", nowhere}, "--api-addr"},
		{"cluster join with an API address that is no URL", []string{"cluster", "join", "--id", "n4", "--raft-addr", "127.0.0.1:7004", "--api-addr", "127.0.0.1:7104", "--addr", nowhere}, "--api-addr"},
		// baton worker
		{"worker weight that would wrap to 1", []string{"worker", "--worker-id", "w1", "--stream", "S", "--weight", "4294967297"}, "-weight"},
		{"worker weight 0", []string{"worker", "--worker-id", "w1", "--stream", "S", "--weight", "0"}, "-weight"},
		{"worker weight above the state machine's bound", []string{"worker", "--worker-id", "w1", "--stream", "S", "--weight", "1001"}, "-weight"},
		{"worker id the state machine refuses", []string{"worker", "--worker-id", "w 1", "--stream", "S"}, "--worker-id: invalid worker id"},
		{"worker batch 0 would silently be the default", []string{"worker", "--worker-id", "w1", "--stream", "S", "--batch", "0"}, "-batch"},
		{"worker batch below the library's minimum", []string{"worker", "--worker-id", "w1", "--stream", "S", "--batch", "5"}, "-batch"},
		{"worker max ack pending 0", []string{"worker", "--worker-id", "w1", "--stream", "S", "--max-ack-pending", "0"}, "-max-ack-pending"},
		{"worker concurrency 0", []string{"worker", "--worker-id", "w1", "--stream", "S", "--concurrency", "0"}, "-concurrency"},
		{"worker checkpoint interval 0", []string{"worker", "--worker-id", "w1", "--stream", "S", "--checkpoint-interval", "0"}, "-checkpoint-interval"},
		{"worker drain timeout 0", []string{"worker", "--worker-id", "w1", "--stream", "S", "--drain-timeout", "0"}, "-drain-timeout"},
		{"worker ack wait 0", []string{"worker", "--worker-id", "w1", "--stream", "S", "--ack-wait", "0"}, "-ack-wait"},
		{"worker pull expiry 0", []string{"worker", "--worker-id", "w1", "--stream", "S", "--pull-expiry", "0"}, "-pull-expiry"},
		{"worker close timeout 0", []string{"worker", "--worker-id", "w1", "--stream", "S", "--close-timeout", "0"}, "-close-timeout"},
		{"worker report interval negative", []string{"worker", "--worker-id", "w1", "--stream", "S", "--report-interval", "-1s"}, "-report-interval"},
		// baton demo
		{"demo partitions 0", []string{"demo", "--partitions", "0"}, "-partitions"},
		{"demo one worker", []string{"demo", "--workers", "1"}, "-workers"},
		{"demo rate 0", []string{"demo", "--rate", "0"}, "-rate"},
		{"demo too short", []string{"demo", "--duration", "5s"}, "-duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(tt.args, &bytes.Buffer{}, &bytes.Buffer{})
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a usage error saying %q", err, tt.want)
			}
		})
	}
}
