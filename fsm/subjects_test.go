package fsm

import (
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// overlapNaive reports whether two subjects (or filters) can match a common
// subject, token by token: the reference SubjectIndex.Overlap is checked
// against.
func overlapNaive(a, b string) bool {
	x, y := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		switch {
		case i == len(x) && i == len(y):
			return true
		case i == len(x) || i == len(y):
			return false // ">" matches one token or more, never zero
		case x[i] == ">" || y[i] == ">":
			return true
		case x[i] != "*" && y[i] != "*" && x[i] != y[i]:
			return false
		}
	}
}

// TestSubjectIndex_MatchesNaive: after any sequence of adds and removes, the
// trie answers every query as a scan of the stored subjects does (the
// smallest overlapping owner), addNew adds exactly the subjects Overlap finds
// free, and a removed subject leaves no node behind.
func TestSubjectIndex_MatchesNaive(t *testing.T) {
	token := rapid.SampledFrom([]string{"a", "b", "c", "*"})
	subject := rapid.Custom(func(t *rapid.T) string {
		toks := rapid.SliceOfN(token, 1, 4).Draw(t, "tokens")
		if rapid.Bool().Draw(t, "fwc") {
			toks = append(toks, ">")
		}
		return strings.Join(toks, ".")
	})
	rapid.Check(t, func(t *rapid.T) {
		x := NewSubjectIndex()
		stored := map[string]PartitionID{}
		for i, n := 0, rapid.IntRange(1, 40).Draw(t, "ops"); i < n; i++ {
			s := subject.Draw(t, "subject")
			p := PartitionID(fmt.Sprintf("p%02d", rapid.IntRange(0, 20).Draw(t, "owner")))
			switch op := rapid.IntRange(0, 2).Draw(t, "op"); {
			case op == 0 && stored[s] != "":
				x.Remove(s)
				delete(stored, s)
			case op == 1:
				free := true
				for o := range stored {
					free = free && !overlapNaive(o, s)
				}
				if added := x.addNew(s, p); added != free {
					t.Fatalf("addNew(%q) = %v, want %v (stored %v)", s, added, free, stored)
				}
				if free {
					stored[s] = p
				}
			default:
				x.Add(s, p)
				stored[s] = p
			}
		}
		for i := 0; i < 20; i++ {
			q := subject.Draw(t, "query")
			var want PartitionID
			for s, p := range stored {
				if overlapNaive(s, q) && (want == "" || p < want) {
					want = p
				}
			}
			got, ok := x.Overlap(q)
			if got != want || ok != (want != "") {
				t.Fatalf("Overlap(%q) = %q, %v; want %q (stored %v)", q, got, ok, want, stored)
			}
		}
		for s := range stored {
			x.Remove(s)
		}
		if !x.root.empty() || x.root.children != nil {
			t.Fatalf("index not empty after removing every subject: %+v", x.root.children)
		}
	})
}

// TestSubjectIndex_NoAllocs: looking up a subject allocates nothing, since the
// applier routes every delivered message through Overlap.
func TestSubjectIndex_NoAllocs(t *testing.T) {
	x := NewSubjectIndex()
	for i := 0; i < 100; i++ {
		x.Add(fmt.Sprintf("orders.%d.>", i), PartitionID(fmt.Sprintf("p%d", i)))
	}
	x.Add("billing.*", "b")
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := x.Overlap("orders.42.created"); !ok {
			t.Fatal("no owner for orders.42.created")
		}
		if _, ok := x.Overlap("billing.eu"); !ok {
			t.Fatal("no owner for billing.eu")
		}
	}); n != 0 {
		t.Fatalf("Overlap allocates %v times per run", n)
	}
}

// validSubjectByTokens is validSubject as first written, token by token: the
// reference the byte loop is checked against.
func validSubjectByTokens(s string) bool {
	if s == "" || len(s) > MaxSubjectLen {
		return false
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		if t == "" {
			return false
		}
		for _, c := range t {
			if c <= ' ' || c == 0x7f {
				return false
			}
		}
		if strings.ContainsAny(t, "*>") && len(t) > 1 {
			return false
		}
		if t == ">" && i != len(toks)-1 {
			return false
		}
	}
	return true
}

func TestValidSubject_MatchesTokenCheck(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.StringOf(rapid.SampledFrom([]rune{'a', '.', '*', '>', ' ', 0x7f, 'é', 0xfffd, '\t'})).Draw(t, "s")
		if rapid.Bool().Draw(t, "invalid utf-8") {
			s += "\xff"
		}
		if got, want := validSubject(s), validSubjectByTokens(s); got != want {
			t.Fatalf("validSubject(%q) = %v, want %v", s, got, want)
		}
	})
}
