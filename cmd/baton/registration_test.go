package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

// recordHandler sends every log record on a channel, dropping those that do
// not fit.
type recordHandler struct{ ch chan<- slog.Record }

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h recordHandler) WithGroup(string) slog.Handler            { return h }
func (h recordHandler) Handle(ctx context.Context, r slog.Record) error {
	select {
	case h.ch <- r.Clone():
	default:
	}
	return nil
}

// startLoneNode starts a real one-node raft cluster with the given id (which
// raftnode itself does not check) and waits until it leads.
func startLoneNode(t *testing.T, id string) *raftnode.Node {
	t.Helper()
	cfg := raftnode.DefaultConfig()
	testcluster.Fast(&cfg)
	cfg.NodeID, cfg.DataDir, cfg.RaftAddr = id, t.TempDir(), "127.0.0.1:0"
	cfg.APIAddr, cfg.Bootstrap = "http://127.0.0.1:1", true
	n, err := raftnode.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	testcluster.Eventually(t, "the node leads", func() error {
		if !n.IsLeader() {
			return fmt.Errorf("not leader")
		}
		return nil
	})
	return n
}

// watch runs watchRegistration on n until the test ends and returns the
// records it logs.
func watch(t *testing.T, n registrar, w registrationWatch) <-chan slog.Record {
	t.Helper()
	records := make(chan slog.Record, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchRegistration(ctx, slog.New(recordHandler{records}), n, w)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return records
}

// TestRegistration_RefusedIsLoud starts a real node whose id the state machine
// refuses (as `baton server --id` allowed before it checked): leading, it can
// never register its API address, and watchRegistration logs an Error that
// says so and why.
func TestRegistration_RefusedIsLoud(t *testing.T) {
	n := startLoneNode(t, "bad id!")
	records := watch(t, n, registrationWatch{grace: 0, poll: 10 * time.Millisecond, repeat: time.Hour})
	select {
	case r := <-records:
		var attrs []string
		r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a.String()); return true })
		all := r.Message + " " + strings.Join(attrs, " ")
		if r.Level != slog.LevelError || !strings.Contains(all, "followers cannot forward") || !strings.Contains(all, "invalid node id") {
			t.Errorf("logged %s %s", r.Level, all)
		}
	case <-time.After(testcluster.Timeout):
		t.Fatal("nothing logged")
	}
}

// TestRegistration_RegisteredIsQuiet checks a leader whose address is in the
// state logs nothing.
func TestRegistration_RegisteredIsQuiet(t *testing.T) {
	n := startLoneNode(t, "n1")
	testcluster.Eventually(t, "the node registers its API address", func() error {
		if _, _, addr := n.Leader(); addr != n.APIAddr() {
			return fmt.Errorf("API address %q", addr)
		}
		return nil
	})
	records := make(chan slog.Record, 1)
	// One term's watch returns as soon as it finds the address.
	registrationWatch{grace: 0, poll: 10 * time.Millisecond, repeat: time.Hour}.
		whileLeader(context.Background(), slog.New(recordHandler{records}), n, n.LeadershipChanged())
	select {
	case r := <-records:
		t.Errorf("logged %s %s", r.Level, r.Message)
	default:
	}
}

func TestRegistrationProblem(t *testing.T) {
	for _, tt := range []struct {
		id, addr string
		want     string
	}{
		{"n1", "http://127.0.0.1:7101", ""},
		{"bad id!", "http://127.0.0.1:7101", "invalid node id"},
		{strings.Repeat("n", 129), "http://127.0.0.1:7101", "invalid node id"},
		{"n1", "http://" + strings.Repeat("h", 300), "API address of 307 bytes"},
	} {
		err := registrationProblem(tt.id, tt.addr)
		if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("registrationProblem(%.20q, %.30q) = %v, want %q", tt.id, tt.addr, err, tt.want)
		}
	}
}
