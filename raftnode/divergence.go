package raftnode

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton/fsm"
)

// NodeDigests is one node's recent digests, as the corruption check fetched
// them from its status.
type NodeDigests struct {
	Node    string
	Digests []Digest
}

// NodeSum is one node's digest sum at an index.
type NodeSum struct {
	Node string
	Sum  [32]byte
}

// Divergence names a node whose digest at an agreed index differed.
type Divergence struct {
	// Node is the divergent node; Index the mark's index; Sum its digest there.
	Node  string
	Index fsm.RaftIndex
	Sum   [32]byte
	// Majority is the digest more than half of the voters held at Index;
	// HasMajority is false when no digest had a majority, and then every
	// node that disagreed is named.
	Majority    [32]byte
	HasMajority bool
	// All lists every compared node's digest at Index, sorted by node.
	All []NodeSum
}

// DigestCheck is the outcome of this node's corruption check so far.
type DigestCheck struct {
	// Divergent lists the nodes found divergent, sorted by id: for each
	// node, its latest comparison decides; this node stays listed from its
	// first divergence against a majority until it restarts or restores a
	// snapshot.
	Divergent []Divergence
	// Checked is the newest index at which this node's digest was compared
	// with another node's (0: never).
	Checked fsm.RaftIndex
	// At is when the last comparison ran (zero: never).
	At time.Time
}

// DivergedError is ErrDiverged (and ErrNotReady) with the evidence.
type DivergedError struct {
	Divergence
}

func (e *DivergedError) Error() string {
	if e.HasMajority {
		return fmt.Sprintf("%s: at index %d this node's digest is %.16s…, the majority's %.16s…; "+
			"wipe its data dir and let it rejoin (docs/operations.md, \"State divergence\")",
			ErrDiverged, e.Index, hexSum(e.Sum), hexSum(e.Majority))
	}
	return fmt.Sprintf("%s: at index %d the nodes disagree with no majority (%s)", ErrDiverged, e.Index, sumList(e.All))
}

// Unwrap makes errors.Is match ErrDiverged and ErrNotReady.
func (e *DivergedError) Unwrap() []error { return []error{ErrDiverged, ErrNotReady} }

func hexSum(s [32]byte) string { return Digest{Sum: s}.String() }

func sumList(all []NodeSum) string {
	parts := make([]string, len(all))
	for i, ns := range all {
		parts[i] = fmt.Sprintf("%s %.16s…", ns.Node, hexSum(ns.Sum))
	}
	return strings.Join(parts, ", ")
}

// verdict is what one comparison says of one node.
type verdict struct {
	// index is the newest index at which the node was compared, and
	// compared the number of nodes compared there.
	index    fsm.RaftIndex
	compared int
	// div is set when the node was divergent there.
	div *Divergence
}

// compareDigests compares the digests nodes report, index by index, and
// returns each compared node's verdict at the newest index where it was
// compared with at least one other node. At each index held by two nodes or
// more: if all agree, they are all in order; otherwise, if more than half of
// the voters hold one digest, the nodes outside that majority are divergent,
// and if no digest has a majority, every node at that index is. A node
// compared at no index is absent. It is pure: same input, same output.
func compareDigests(voters int, reports []NodeDigests) map[string]verdict {
	at := map[fsm.RaftIndex][]NodeSum{}
	for _, r := range reports {
		for _, d := range r.Digests {
			at[d.Index] = append(at[d.Index], NodeSum{Node: r.Node, Sum: d.Sum})
		}
	}
	out := map[string]verdict{}
	for _, idx := range slices.Sorted(maps.Keys(at)) {
		sums := at[idx]
		if len(sums) < 2 {
			continue
		}
		slices.SortFunc(sums, func(a, b NodeSum) int { return cmp.Compare(a.Node, b.Node) })
		sums = slices.CompactFunc(sums, func(a, b NodeSum) bool { return a.Node == b.Node })
		if len(sums) < 2 {
			continue
		}
		count := map[[32]byte]int{}
		for _, ns := range sums {
			count[ns.Sum]++
		}
		// More nodes than voters (a membership change in flight) raise the
		// bar: at most one digest can then have a majority.
		total := max(voters, len(sums))
		var majority [32]byte
		has := false
		for sum, c := range count {
			if 2*c > total {
				majority, has = sum, true
			}
		}
		for _, ns := range sums {
			v := verdict{index: idx, compared: len(sums)}
			if len(count) > 1 && (!has || ns.Sum != majority) {
				v.div = &Divergence{Node: ns.Node, Index: idx, Sum: ns.Sum, Majority: majority, HasMajority: has, All: sums}
			}
			out[ns.Node] = v
		}
	}
	return out
}

// divergence keeps what the corruption check found, for Ready, reads, status
// and the metric. mu guards every field; the check goroutine (CheckDigests),
// the FSM goroutine (a snapshot restore) and readers (Ready, Read, status)
// take it briefly.
type divergence struct {
	mu sync.Mutex
	// verdicts holds each member's latest verdict, across checks: a member
	// the last check could not reach keeps the one before.
	verdicts map[string]verdict
	// self is this node's first divergence against a majority; it stands
	// until a restart or a snapshot restore.
	self    *Divergence
	checked fsm.RaftIndex
	at      time.Time
}

// update folds a comparison's verdicts in: a verdict at an index below the
// one held, or at the same index from fewer nodes, is ignored; members no
// longer in the cluster are forgotten. It
// returns the nodes that became divergent and those that ceased to be.
func (d *divergence) update(self string, members []string, vs map[string]verdict, now time.Time) (diverged []Divergence, cleared []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.verdicts == nil {
		d.verdicts = map[string]verdict{}
	}
	for _, node := range slices.Sorted(maps.Keys(vs)) {
		v := vs[node]
		old, had := d.verdicts[node]
		if had && (v.index < old.index || v.index == old.index && v.compared < old.compared) {
			continue
		}
		d.verdicts[node] = v
		switch {
		case v.div != nil && (!had || old.div == nil):
			diverged = append(diverged, *v.div)
		case v.div == nil && had && old.div != nil:
			cleared = append(cleared, node)
		}
		if node == self {
			d.checked = max(d.checked, v.index)
			if v.div != nil && v.div.HasMajority && d.self == nil {
				d.self = v.div
			}
		}
	}
	for node := range d.verdicts {
		if !slices.Contains(members, node) {
			delete(d.verdicts, node)
		}
	}
	d.at = now
	return diverged, cleared
}

// reset forgets this node's own divergence and verdict: a snapshot replaced
// its state.
func (d *divergence) reset(self string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.self = nil
	delete(d.verdicts, self)
}

// report returns the check's outcome, and the members with their state for
// the metric (true: divergent).
func (d *divergence) report(self string) (DigestCheck, map[string]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := DigestCheck{Checked: d.checked, At: d.at}
	flags := map[string]bool{}
	for node, v := range d.verdicts {
		flags[node] = v.div != nil
		if v.div != nil && !(node == self && d.self != nil) {
			out.Divergent = append(out.Divergent, *v.div)
		}
	}
	if d.self != nil {
		out.Divergent = append(out.Divergent, *d.self)
		flags[self] = true
	}
	slices.SortFunc(out.Divergent, func(a, b Divergence) int { return cmp.Compare(a.Node, b.Node) })
	return out, flags
}

// own returns this node's divergence, if any.
func (d *divergence) own(self string) *Divergence {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.self != nil {
		return d.self
	}
	return d.verdicts[self].div
}

// CheckDigests compares this node's digests with the peers' (fetched by the
// caller, the API server's corruption check, from the members' status) and
// returns the outcome. voters is the number of voting members and members
// their ids. A node found divergent is logged at Error with the index and
// the digests, and counted in baton_raftnode_state_divergence; if it is this
// node, Ready and the reads it would answer from its own state fail with a
// *DivergedError, and, when a majority disagrees with it and it leads, it
// hands leadership to another voter (bounded by ctx).
func (n *Node) CheckDigests(ctx context.Context, voters int, members []string, peers []NodeDigests) DigestCheck {
	self := n.cfg.NodeID
	reports := append([]NodeDigests{{Node: self, Digests: n.Digests()}}, peers...)
	diverged, cleared := n.div.update(self, members, compareDigests(voters, reports), time.Now())
	for _, d := range diverged {
		args := []any{"divergent_node", d.Node, "index", d.Index, "digest", hexSum(d.Sum), "digests", sumList(d.All)}
		if d.HasMajority {
			args = append(args, "majority_digest", hexSum(d.Majority))
		} else {
			args = append(args, "majority_digest", "none")
		}
		if d.Node == self {
			args = append(args, "action", "this node reports not ready; wipe its data dir and let it rejoin (docs/operations.md)")
		}
		n.log.Error("state divergence: a replica's state or audit log differs at an agreed index", args...)
	}
	for _, node := range cleared {
		n.log.Warn("state divergence: the node agrees again at a later index", "node", node)
	}
	out, flags := n.div.report(self)
	n.metrics.setDivergence(flags)
	if own := n.div.own(self); own != nil && own.HasMajority && n.IsLeader() && n.voters() > 1 {
		n.log.Warn("this node's state diverged: handing leadership over")
		if err := waitFuture(ctx, n.raft.LeadershipTransfer()); err != nil {
			n.log.Warn("leadership transfer after divergence", "err", n.translate(err))
		}
	}
	return out
}

// DigestCheck returns the outcome of the corruption check so far.
func (n *Node) DigestCheck() DigestCheck {
	out, _ := n.div.report(n.cfg.NodeID)
	return out
}

// diverged returns a *DivergedError while the corruption check holds this
// node divergent.
func (n *Node) diverged() error {
	if d := n.div.own(n.cfg.NodeID); d != nil {
		return &DivergedError{Divergence: *d}
	}
	return nil
}
