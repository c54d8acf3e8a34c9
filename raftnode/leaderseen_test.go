package raftnode

import "testing"

func TestLeaderSeen_CountsChanges(t *testing.T) {
	var s leaderSeen
	steps := []struct {
		id   string
		term uint64
		want bool
	}{
		{"", 1, false},   // an election: no leader yet
		{"n1", 1, false}, // the first leader learned of is not a change
		{"n1", 1, false},
		{"", 2, false},   // n1 lost it
		{"n1", 2, true},  // re-elected in a new term
		{"n2", 3, true},  // another node
		{"n2", 3, false}, // seen again
		{"n3", 3, true},  // another node, same term as far as this node saw
	}
	for i, st := range steps {
		if got := s.changed(st.id, st.term); got != st.want {
			t.Fatalf("step %d (%q, term %d): changed %v, want %v", i, st.id, st.term, got, st.want)
		}
	}
}
