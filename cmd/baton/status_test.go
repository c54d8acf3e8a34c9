package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// TestPrintStatus_Digests: baton status says how far the corruption check
// got, and names every diverged node with the index and both digests, and
// where to read how to recover.
func TestPrintStatus_Digests(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	tests := []struct {
		name string
		st   api.ClusterStatus
		want []string
	}{
		{"no mark yet", api.ClusterStatus{}, []string{"Digests:  none yet"}},
		{"not compared yet", api.ClusterStatus{Digests: []api.Digest{{Index: 7, Digest: a}}},
			[]string{"last at index 7 (aaaaaaaaaaaa…), not compared"}},
		{"all agree", api.ClusterStatus{Digests: []api.Digest{{Index: 5, Digest: b}, {Index: 7, Digest: a}}, DigestChecked: 7},
			[]string{"last at index 7 (aaaaaaaaaaaa…), compared with the other nodes up to index 7"}},
		{"a node diverged", api.ClusterStatus{Digests: []api.Digest{{Index: 7, Digest: a}}, DigestChecked: 7,
			Divergence: []api.Divergence{{Node: "n3", Index: 7, Digest: b, Majority: a}}},
			[]string{"DIVERGED: node n3 at index 7: digest bbbbbbbbbbbb…, the majority's aaaaaaaaaaaa…", "State divergence"}},
		{"no majority", api.ClusterStatus{Digests: []api.Digest{{Index: 7, Digest: a}}, DigestChecked: 7,
			Divergence: []api.Divergence{{Node: "n1", Index: 7, Digest: a, Digests: []api.NodeDigest{{Node: "n1", Digest: a}, {Node: "n2", Digest: b}}}}},
			[]string{"DIVERGED: node n1 at index 7, no majority: n1 aaaaaaaaaaaa…, n2 bbbbbbbbbbbb…"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := printStatus(clientFlags{out: &out}, tt.st, fsm.Summary{}, nil); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if len(tt.st.Divergence) == 0 && strings.Contains(out.String(), "DIVERGED") {
				t.Errorf("a divergence printed without one:\n%s", out.String())
			}
		})
	}
}
