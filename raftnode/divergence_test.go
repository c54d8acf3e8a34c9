package raftnode

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/fsm"
)

// sum is a digest sum for tests: byte 0 names it.
func sum(b byte) [32]byte { return [32]byte{b} }

// reports builds NodeDigests from "node: index=sum index=sum" lines, sums
// being single letters.
func reports(lines ...string) []NodeDigests {
	var out []NodeDigests
	for _, l := range lines {
		node, rest, _ := strings.Cut(l, ":")
		r := NodeDigests{Node: node}
		for _, f := range strings.Fields(rest) {
			var idx uint64
			var s string
			if _, err := fmt.Sscanf(strings.Replace(f, "=", " ", 1), "%d %s", &idx, &s); err != nil {
				panic(err)
			}
			r.Digests = append(r.Digests, Digest{Index: fsm.RaftIndex(idx), Sum: sum(s[0])})
		}
		out = append(out, r)
	}
	return out
}

// TestCompareDigests is the corruption check's verdict, index by index: the
// majority is more than half of the voters, a node's latest comparison
// decides, and indexes held by one node only decide nothing.
func TestCompareDigests(t *testing.T) {
	tests := []struct {
		name    string
		voters  int
		reports []NodeDigests
		// want is each compared node's verdict: "ok@idx", or
		// "div@idx" (against a majority) or "nomaj@idx".
		want map[string]string
	}{
		{"all agree: everyone in order at the newest common index", 3,
			reports("n1: 10=a 20=b", "n2: 10=a 20=b", "n3: 10=a 20=b"),
			map[string]string{"n1": "ok@20", "n2": "ok@20", "n3": "ok@20"}},
		{"one of three differs: it alone is divergent", 3,
			reports("n1: 10=a", "n2: 10=a", "n3: 10=x"),
			map[string]string{"n1": "ok@10", "n2": "ok@10", "n3": "div@10"}},
		{"two of five agree, three absent: no majority, both named", 5,
			reports("n1: 10=a", "n2: 10=x"),
			map[string]string{"n1": "nomaj@10", "n2": "nomaj@10"}},
		{"one of two reachable in three differs: no majority, both named", 3,
			reports("n1: 10=a", "n2: 10=x"),
			map[string]string{"n1": "nomaj@10", "n2": "nomaj@10"}},
		{"three distinct digests in three: all named", 3,
			reports("n1: 10=a", "n2: 10=b", "n3: 10=c"),
			map[string]string{"n1": "nomaj@10", "n2": "nomaj@10", "n3": "nomaj@10"}},
		{"three of five agree: the other two are divergent", 5,
			reports("n1: 10=a", "n2: 10=a", "n3: 10=a", "n4: 10=x", "n5: 10=y"),
			map[string]string{"n1": "ok@10", "n2": "ok@10", "n3": "ok@10", "n4": "div@10", "n5": "div@10"}},
		{"a lagging node is compared at the indexes it has", 3,
			reports("n1: 10=a 20=b 30=c", "n2: 10=a 20=b 30=c", "n3: 10=a 20=x"),
			map[string]string{"n1": "ok@30", "n2": "ok@30", "n3": "div@20"}},
		{"an index only one node holds decides nothing", 3,
			reports("n1: 10=a 40=q", "n2: 10=a", "n3: 30=z"),
			map[string]string{"n1": "ok@10", "n2": "ok@10"}},
		{"no-majority evidence is superseded by a later majority", 3,
			reports("n1: 10=a 20=b", "n2: 10=x 20=y", "n3: 20=b"),
			map[string]string{"n1": "ok@20", "n2": "div@20", "n3": "ok@20"}},
		{"a node that agrees again at a later index is in order", 3,
			reports("n1: 10=a 20=b", "n2: 10=a 20=b", "n3: 10=x 20=b"),
			map[string]string{"n1": "ok@20", "n2": "ok@20", "n3": "ok@20"}},
		{"more reporters than voters raise the bar", 1,
			reports("n1: 10=a", "n2: 10=x"),
			map[string]string{"n1": "nomaj@10", "n2": "nomaj@10"}},
		{"a node listed twice counts once", 3,
			reports("n1: 10=a", "n1: 10=a", "n2: 10=x"),
			map[string]string{"n1": "nomaj@10", "n2": "nomaj@10"}},
		{"nothing reported", 3, nil, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{}
			for node, v := range compareDigests(tt.voters, tt.reports) {
				switch {
				case v.div == nil:
					got[node] = fmt.Sprintf("ok@%d", v.index)
				case v.div.HasMajority:
					got[node] = fmt.Sprintf("div@%d", v.index)
				default:
					got[node] = fmt.Sprintf("nomaj@%d", v.index)
				}
			}
			if !maps.Equal(got, tt.want) {
				t.Fatalf("verdicts %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCompareDigests_Evidence: a divergence carries the index, the node's
// digest, the majority's and every compared node's, sorted.
func TestCompareDigests_Evidence(t *testing.T) {
	v := compareDigests(3, reports("n3: 10=x", "n1: 10=a", "n2: 10=a"))["n3"]
	want := Divergence{Node: "n3", Index: 10, Sum: sum('x'), Majority: sum('a'), HasMajority: true,
		All: []NodeSum{{"n1", sum('a')}, {"n2", sum('a')}, {"n3", sum('x')}}}
	if v.div == nil || v.div.Node != want.Node || v.div.Index != want.Index || v.div.Sum != want.Sum ||
		v.div.Majority != want.Majority || !v.div.HasMajority || !slices.Equal(v.div.All, want.All) {
		t.Fatalf("evidence %+v, want %+v", v.div, want)
	}
	err := error(&DivergedError{Divergence: *v.div})
	if !errors.Is(err, ErrDiverged) || !errors.Is(err, ErrNotReady) {
		t.Fatalf("%v does not match ErrDiverged and ErrNotReady", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "index 10") || !strings.Contains(msg, hexSum(sum('x'))[:16]) ||
		!strings.Contains(msg, hexSum(sum('a'))[:16]) {
		t.Fatalf("message %q does not name the index and both digests", msg)
	}
}

// TestDivergence_Update: verdicts fold in across checks. A member the check
// could not reach keeps its verdict; an older verdict, or one at the same
// index from fewer nodes, never overrides the one held; this node's divergence against a majority stands until reset, while a
// divergence without a majority follows the evidence; removed members are
// forgotten.
func TestDivergence_Update(t *testing.T) {
	var d divergence
	members := []string{"n1", "n2", "n3"}
	now := time.Unix(100, 0)
	step := func(lines ...string) (diverged []string, cleared []string) {
		t.Helper()
		ds, cs := d.update("n1", members, compareDigests(3, reports(lines...)), now)
		for _, x := range ds {
			diverged = append(diverged, x.Node)
		}
		return diverged, cs
	}
	nodes := func() []string {
		rep, _ := d.report("n1")
		var out []string
		for _, x := range rep.Divergent {
			out = append(out, x.Node)
		}
		return out
	}

	if div, _ := step("n1: 10=a", "n2: 10=a", "n3: 10=x"); !slices.Equal(div, []string{"n3"}) {
		t.Fatalf("first check: diverged %v, want [n3]", div)
	}
	// n3 unreachable: its verdict stays.
	if div, cl := step("n1: 20=b", "n2: 20=b"); div != nil || cl != nil || !slices.Equal(nodes(), []string{"n3"}) {
		t.Fatalf("n3 unreachable: diverged %v cleared %v, listed %v; want n3 still listed", div, cl, nodes())
	}
	// Weaker evidence (index 10 again, from two nodes) does not override.
	if _, cl := step("n2: 10=a", "n3: 10=a"); cl != nil {
		t.Fatalf("weaker evidence cleared %v", cl)
	}
	// At the same index, more nodes decide: two without a majority named
	// both, three with one name only the one outside it.
	members = append(members, "n4")
	step("n1: 25=a", "n4: 25=x")
	if got := nodes(); !slices.Equal(got, []string{"n1", "n3", "n4"}) {
		t.Fatalf("no majority at 25: listed %v, want n1, n3, n4", got)
	}
	step("n1: 25=a", "n2: 25=a", "n4: 25=x")
	if got := nodes(); !slices.Equal(got, []string{"n3", "n4"}) {
		t.Fatalf("majority at 25: listed %v, want n3, n4", got)
	}
	members = members[:3]
	// n3 rejoined after a wipe: it agrees at a newer index.
	if _, cl := step("n1: 30=c", "n2: 30=c", "n3: 30=c"); !slices.Equal(cl, []string{"n3"}) || nodes() != nil {
		t.Fatalf("n3 agrees again: cleared %v, listed %v", cl, nodes())
	}
	if rep, _ := d.report("n1"); rep.Checked != 30 || !rep.At.Equal(now) {
		t.Fatalf("checked %d at %v, want 30 at %v", rep.Checked, rep.At, now)
	}

	// This node without a majority: named while the evidence says so.
	step("n1: 40=a", "n2: 40=x")
	if d.own("n1") == nil {
		t.Fatal("n1 not divergent without a majority")
	}
	step("n1: 50=a", "n2: 50=a", "n3: 50=a")
	if d.own("n1") != nil {
		t.Fatal("n1 still divergent after agreeing with a majority")
	}
	// This node against a majority: it stands, even if it agrees later.
	step("n1: 60=x", "n2: 60=a", "n3: 60=a")
	step("n1: 70=a", "n2: 70=a", "n3: 70=a")
	if own := d.own("n1"); own == nil || own.Index != 60 {
		t.Fatalf("n1's divergence at 60 did not stand: %+v", own)
	}
	if _, flags := d.report("n1"); !flags["n1"] || flags["n2"] || flags["n3"] {
		t.Fatalf("metric flags %v, want only n1", flags)
	}
	d.reset("n1")
	if d.own("n1") != nil {
		t.Fatal("n1 divergent after reset")
	}
	// Removed members are forgotten.
	members = []string{"n1", "n2"}
	step("n1: 80=a", "n2: 80=a")
	if _, flags := d.report("n1"); len(flags) != 2 {
		t.Fatalf("flags %v after n3 was removed", flags)
	}
}
