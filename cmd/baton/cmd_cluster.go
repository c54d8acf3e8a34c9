package main

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

func runStatus(args []string) error {
	f := newFlags("status", "baton status [flags]", `
Shows the answering node's view of the cluster (members, leader, raft and audit
indexes, readiness) and the claim store's counts: workers by state, partitions by
phase, pending handoffs, whether rebalancing is paused.`, 0, 0)
	var c clientFlags
	_, cl, ctx, done, err := c.connect(f, args)
	if err != nil {
		return err
	}
	defer done()
	st, err := cl.Status(ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	sum, sumErr := cl.Summary(ctx)
	if c.json {
		out := map[string]any{"cluster": st}
		if sumErr == nil {
			out["summary"] = sum
		} else {
			out["summary_error"] = sumErr.Error()
		}
		return c.printJSON(out)
	}
	return printStatus(c, st, sum, sumErr)
}

// printStatus prints the cluster status and, unless sumErr, the summary.
func printStatus(c clientFlags, st api.ClusterStatus, sum fsm.Summary, sumErr error) error {
	ready := "ready"
	if !st.Ready {
		ready = "NOT READY: " + termSafe(st.NotReady)
	}
	fmt.Fprintf(c.out, "Node:     %s (%s, term %d), %s\n", termSafe(st.NodeID), termSafe(st.State), st.Term, ready)
	fmt.Fprintf(c.out, "Leader:   %s\n", strings.TrimSpace(termSafe(dash(st.LeaderID))+" "+termSafe(st.LeaderAPI)))
	fmt.Fprintf(c.out, "Indexes:  commit %d, applied %d, state %d, last log %d, snapshot %d\n",
		st.CommitIndex, st.AppliedIndex, st.StateIndex, st.LastIndex, st.SnapshotIndex)
	fmt.Fprintf(c.out, "Audit:    %d events, index %d..%d\n", st.AuditEvents, st.AuditFirst, st.AuditLast)
	printDigests(c, st)
	fmt.Fprintln(c.out)
	t := newTable(c.out, "MEMBER", "RAFT ADDR", "API ADDR", "ROLE", "VOTER")
	for _, m := range st.Members {
		role := "follower"
		if m.Leader {
			role = "leader"
		}
		voter := "yes"
		if !m.Voter {
			voter = "no"
		}
		t.row(m.ID, m.RaftAddr, dash(m.APIAddr), role, voter)
	}
	t.flush()
	fmt.Fprintln(c.out)
	if sumErr != nil {
		return fmt.Errorf("summary: %w", sumErr)
	}
	fmt.Fprintf(c.out, "Workers:     %s", countsOf(sum.Workers, []fsm.WorkerState{fsm.WorkerActive, fsm.WorkerLeaving, fsm.WorkerGone}))
	if sum.Cordoned > 0 {
		fmt.Fprintf(c.out, " (%d cordoned)", sum.Cordoned)
	}
	fmt.Fprintln(c.out)
	fmt.Fprintf(c.out, "Partitions:  %d: %s\n", sum.Partitions, countsOf(sum.PartitionsByPhase, []fsm.Phase{
		fsm.PhaseActive, fsm.PhaseActivating, fsm.PhasePreparing, fsm.PhaseDrained, fsm.PhaseOrphaned, fsm.PhaseUnassigned}))
	fmt.Fprintf(c.out, "Handoffs:    %d pending\n", sum.Handoffs)
	rebalance := "running"
	if sum.Paused {
		rebalance = "PAUSED (baton resume)"
	}
	fmt.Fprintf(c.out, "Rebalancing: %s\n", rebalance)
	fmt.Fprintf(c.out, "State index: %d (term %d)\n", sum.Index, sum.Term)
	return nil
}

// printDigests prints the corruption check's line and, loudly, every
// divergence the node found.
func printDigests(c clientFlags, st api.ClusterStatus) {
	switch {
	case len(st.Digests) == 0:
		fmt.Fprintf(c.out, "Digests:  none yet (the leader marks an index every --digest-interval)\n")
	case st.DigestChecked == 0:
		last := st.Digests[len(st.Digests)-1]
		fmt.Fprintf(c.out, "Digests:  last at index %d (%s), not compared with another node yet\n", last.Index, short(last.Digest))
	default:
		last := st.Digests[len(st.Digests)-1]
		fmt.Fprintf(c.out, "Digests:  last at index %d (%s), compared with the other nodes up to index %d\n",
			last.Index, short(last.Digest), st.DigestChecked)
	}
	for _, d := range st.Divergence {
		if d.Majority != "" {
			fmt.Fprintf(c.out, "DIVERGED: node %s at index %d: digest %s, the majority's %s\n",
				termSafe(d.Node), d.Index, short(d.Digest), short(d.Majority))
		} else {
			var all []string
			for _, nd := range d.Digests {
				all = append(all, termSafe(nd.Node)+" "+short(nd.Digest))
			}
			fmt.Fprintf(c.out, "DIVERGED: node %s at index %d, no majority: %s\n", termSafe(d.Node), d.Index, strings.Join(all, ", "))
		}
	}
	if len(st.Divergence) > 0 {
		fmt.Fprintf(c.out, "          wipe a diverged node's data dir and let it rejoin: docs/operations.md, \"State divergence\"\n")
	}
}

// short abbreviates a digest for a terminal.
func short(digest string) string {
	if len(digest) > 12 {
		digest = digest[:12] + "…"
	}
	return termSafe(digest)
}

// countsOf renders counts in the given key order, e.g. "3 active, 1 gone".
func countsOf[K comparable](m map[K]int, order []K) string {
	var parts []string
	for _, k := range order {
		if n := m[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, termSafe(fmt.Sprint(k))))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func runCluster(args []string) error {
	usage := "baton cluster join --id ID --raft-addr HOST:PORT --api-addr URL | baton cluster remove ID"
	if len(args) == 0 {
		return usageErrorf("usage: %s", usage)
	}
	switch args[0] {
	case "join":
		return runClusterJoin(args[1:])
	case "remove":
		return runClusterRemove(args[1:])
	case "status":
		return runStatus(args[1:])
	case "-h", "--help", "-help", "help":
		fmt.Printf("Usage: %s\n\nOperator membership of the claim store:\n  join    add a node as a voter (idempotent)\n  remove  take a node out of the cluster\n  status  same as 'baton status'\n\nRun 'baton cluster join --help' for flags.\n", usage)
		return nil
	}
	return usageErrorf("unknown 'cluster' verb %q; usage: %s", args[0], usage)
}

func runClusterJoin(args []string) error {
	f := newFlags("cluster join", "baton cluster join --id ID --raft-addr HOST:PORT --api-addr URL [flags]", `
Adds a claim-store node to the cluster as a voter (operator). The node must be
running (started without --bootstrap). Joining again with the same id and
addresses changes nothing. 'baton server --join' does this by itself.`, 0, 0)
	var c clientFlags
	c.register(f)
	var req api.JoinRequest
	f.StringVar(&req.ID, "id", "", "the node's id")
	f.StringVar(&req.RaftAddr, "raft-addr", "", "the node's raft address host:port")
	f.StringVar(&req.APIAddr, "api-addr", "", "the node's API base URL")
	if _, err := f.parse(args); err != nil {
		return err
	}
	if req.ID == "" || req.RaftAddr == "" || req.APIAddr == "" {
		return usageErrorf("cluster join needs --id, --raft-addr and --api-addr")
	}
	if err := checkJoin(req); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := c.ctx()
	defer cancel()
	if err := cl.Join(ctx, req); err != nil {
		return fmt.Errorf("join %s: %w", req.ID, err)
	}
	if c.json {
		return c.printJSON(map[string]string{"joined": req.ID})
	}
	fmt.Fprintf(c.out, "node %s joined (raft %s, api %s)\n", req.ID, req.RaftAddr, req.APIAddr)
	return nil
}

func runClusterRemove(args []string) error {
	f := newFlags("cluster remove", "baton cluster remove ID [flags]", `
Takes a claim-store node out of the cluster (operator). Removing the leader makes
it step down first. Removing a node that is not a member is an error (unknown_node).`, 1, 1)
	var c clientFlags
	pos, cl, ctx, done, err := c.connect(f, args)
	if err != nil {
		return err
	}
	defer done()
	if err := cl.RemoveNode(ctx, pos[0]); err != nil {
		return fmt.Errorf("remove %s: %w", pos[0], err)
	}
	if c.json {
		return c.printJSON(map[string]string{"removed": pos[0]})
	}
	fmt.Fprintf(c.out, "node %s removed\n", pos[0])
	return nil
}

// sortedKeys returns a map's keys sorted.
func sortedKeys[K ~string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkJoin refuses a join the state machine would refuse to record: the node
// would become a raft voter whose API address no node knows.
func checkJoin(req api.JoinRequest) error {
	if err := usageFromCheck("--id", fsm.CheckNodeID(req.ID)); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(req.RaftAddr); err != nil {
		return usageErrorf("--raft-addr %s: %v", termSafe(req.RaftAddr), err)
	}
	if len(req.APIAddr) > fsm.MaxAddrLen {
		return usageErrorf("--api-addr: %d bytes, at most %d", len(req.APIAddr), fsm.MaxAddrLen)
	}
	if u, err := url.Parse(req.APIAddr); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErrorf("--api-addr %s: want a base URL such as http://127.0.0.1:7102", termSafe(req.APIAddr))
	}
	return nil
}
