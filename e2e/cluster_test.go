package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/fsm"
)

// server is one `baton server` process and the addresses it reported.
type server struct {
	*proc
	id       string
	raftAddr string
	url      string
	// token is the bearer token the helpers present to it (empty: the
	// servers take none).
	token string
}

// clientOpts are the options of a helper's client of s: its token, if any.
func (s *server) clientOpts(opts ...client.Option) []client.Option {
	if s.token != "" {
		opts = append(opts, client.WithToken(s.token))
	}
	return opts
}

// serverArgs are the flags every test server gets: loopback, JSON logs, and
// timings short enough for tests (sessions of 2s, elections in about a second).
func serverArgs(id, dir, raftAddr, httpAddr string) []string {
	return []string{
		"server", "--id", id, "--data-dir", dir,
		"--raft-addr", raftAddr, "--http-addr", httpAddr,
		"--log-format", "json", "--log-level", "info",
		"--session-ttl", "2s", "--heartbeat-interval", "500ms",
		"--stabilization-window", "500ms", "--controller-tick", "100ms", "--drain-timeout", "5s",
		"--raft-heartbeat-timeout", "500ms", "--raft-election-timeout", "500ms",
		"--raft-leader-lease-timeout", "250ms", "--raft-commit-timeout", "10ms",
		"--shutdown-timeout", "10s",
	}
}

// startServers starts n servers on free loopback ports: the first bootstraps,
// the others join through it. Each server reports the ports it bound in its
// "listening" log line, so nothing races for a port. It waits until all are
// members and ready. flags ("--flag", "value" pairs) replace serverArgs's.
func startServers(t *testing.T, n int, flags ...string) []*server {
	t.Helper()
	return startServersToken(t, "", n, flags...)
}

// startServersToken is startServers for servers that need a token (flags
// configure them with --token-file or --token): the helpers present token,
// which needs at least the read role.
func startServersToken(t *testing.T, token string, n int, flags ...string) []*server {
	t.Helper()
	base := t.TempDir()
	var out []*server
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		args := withFlags(serverArgs(id, filepath.Join(base, id), "127.0.0.1:0", "127.0.0.1:0"), flags...)
		if i == 1 {
			args = append(args, "--bootstrap")
		} else {
			args = append(args, "--join", out[0].url)
		}
		p := start(t, id, args...)
		line := p.waitLog("listening")
		s := &server{proc: p, id: id, raftAddr: str(line["raft_addr"]), url: str(line["api_url"]), token: token}
		// A restart must come back on the same addresses.
		p.args = withFlags(serverArgs(id, filepath.Join(base, id), s.raftAddr, strings.TrimPrefix(s.url, "http://")), flags...)
		if i > 1 {
			p.args = append(p.args, "--join", out[0].url)
		}
		out = append(out, s)
	}
	waitReady(t, out, n)
	return out
}

// withFlags returns args with each "--flag", "value" pair of flags replacing
// the flag's value in args, or appended if args lacks it.
func withFlags(args []string, flags ...string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(flags); i += 2 {
		if j := slices.Index(out, flags[i]); j >= 0 && j+1 < len(out) {
			out[j+1] = flags[i+1]
		} else {
			out = append(out, flags[i], flags[i+1])
		}
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func urls(servers []*server) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.url)
	}
	return out
}

func newClient(t *testing.T, addrs []string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(addrs, append([]client.Option{client.WithTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// waitReady waits until every given server is ready and sees members voters.
func waitReady(t *testing.T, servers []*server, members int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d servers ready with %d members", len(servers), members), func() error {
		for _, s := range servers {
			c, err := client.New([]string{s.url}, s.clientOpts(client.WithRetries(0), client.WithTimeout(2*time.Second))...)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := c.Status(ctx)
			cancel()
			c.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", s.id, err)
			}
			if !st.Ready {
				return fmt.Errorf("%s not ready: %s", s.id, st.NotReady)
			}
			if len(st.Members) != members {
				return fmt.Errorf("%s sees %d members", s.id, len(st.Members))
			}
		}
		return nil
	})
}

// leaderOf returns the server the given ones agree is the leader.
func leaderOf(t *testing.T, servers []*server) *server {
	t.Helper()
	var leader *server
	eventually(t, "an agreed leader", func() error {
		leader = nil
		var id string
		for _, s := range servers {
			c, err := client.New([]string{s.url}, s.clientOpts(client.WithRetries(0), client.WithTimeout(2*time.Second))...)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := c.Status(ctx)
			cancel()
			c.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", s.id, err)
			}
			if st.LeaderID == "" || !st.Ready {
				return fmt.Errorf("%s knows no leader (ready=%v)", s.id, st.Ready)
			}
			if id != "" && st.LeaderID != id {
				return fmt.Errorf("%s says %s leads, another says %s", s.id, st.LeaderID, id)
			}
			id = st.LeaderID
		}
		for _, s := range servers {
			if s.id == id {
				leader = s
			}
		}
		if leader == nil {
			return fmt.Errorf("leader %s is not among the servers asked", id)
		}
		return nil
	})
	return leader
}

// auditOf reads a node's own copy of the whole audit log.
func auditOf(s *server) ([]fsm.Event, error) {
	c, err := client.New([]string{s.url}, s.clientOpts(client.WithConsistency(client.ConsistencyStale), client.WithRetries(0), client.WithTimeout(5*time.Second))...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []fsm.Event
	for ev, err := range c.AuditAll(ctx, client.AuditQuery{Limit: 1000}) {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.id, err)
		}
		out = append(out, ev.Event)
	}
	return out, nil
}

// sameAudit waits until every server holds the same audit log and returns it.
func sameAudit(t *testing.T, servers []*server) []fsm.Event {
	t.Helper()
	var ref []fsm.Event
	eventually(t, "identical audit logs on every node", func() error {
		ref = nil
		for i, s := range servers {
			evs, err := auditOf(s)
			if err != nil {
				return err
			}
			if i == 0 {
				ref = evs
				continue
			}
			if !reflect.DeepEqual(ref, evs) {
				return fmt.Errorf("audit of %s (%d events, last index %d) differs from %s's (%d events, last index %d)",
					s.id, len(evs), lastIndex(evs), servers[0].id, len(ref), lastIndex(ref))
			}
		}
		return nil
	})
	return ref
}

func lastIndex(evs []fsm.Event) fsm.RaftIndex {
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Index
}

// settled waits until the wanted workers are active, every partition is
// active with no handoff pending, and the controller plans no move.
func settled(t *testing.T, c *client.Client, workers ...fsm.WorkerID) {
	t.Helper()
	eventually(t, "placement settled", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return placementSettled(ctx, c, workers...)
	})
}

// placementSettled says why placement is not settled (see settled), or nil.
func placementSettled(ctx context.Context, c *client.Client, workers ...fsm.WorkerID) error {
	wl, err := c.Workers(ctx)
	if err != nil {
		return err
	}
	active := map[fsm.WorkerID]bool{}
	for _, w := range wl.Workers {
		if w.State == fsm.WorkerActive {
			active[w.ID] = true
		}
	}
	for _, w := range workers {
		if !active[w] {
			return fmt.Errorf("worker %s is not active", w)
		}
	}
	if len(active) != len(workers) {
		return fmt.Errorf("%d active workers, want %d", len(active), len(workers))
	}
	for p, err := range c.AllPartitions(ctx) {
		if err != nil {
			return err
		}
		if p.Phase != fsm.PhaseActive || p.PendingHandoff != nil {
			return fmt.Errorf("partition %s is %s on %s", p.ID, p.Phase, p.Owner)
		}
	}
	h, err := c.Handoffs(ctx)
	if err != nil {
		return err
	}
	if len(h.Handoffs) > 0 {
		return fmt.Errorf("%d handoffs pending", len(h.Handoffs))
	}
	return nil
}

// ownerCount returns how many partitions each worker owns.
func ownerCount(ctx context.Context, c *client.Client) (map[fsm.WorkerID]int, error) {
	out := map[fsm.WorkerID]int{}
	for p, err := range c.AllPartitions(ctx) {
		if err != nil {
			return nil, err
		}
		out[p.Owner]++
	}
	return out, nil
}

// declarePartitions declares n partitions ("p-" and a number, subjects
// orders.<id>.>) through the CLI, and returns their ids, sorted, as the
// cluster lists them (the CLI pads the numbers to the count's width).
func declarePartitions(t *testing.T, c *client.Client, addr string, n int) []fsm.PartitionID {
	t.Helper()
	cli(t, "partitions", "declare", "--addr", addr, "--template", "orders.{{.Partition}}.>", "--prefix", "p-", "--count", strconv.Itoa(n))
	owners, err := partitionOwners(c)
	if err != nil {
		t.Fatal(err)
	}
	parts := make([]fsm.PartitionID, 0, len(owners))
	for p := range owners {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	if len(parts) != n {
		t.Fatalf("%d partitions declared, want %d", len(parts), n)
	}
	return parts
}
