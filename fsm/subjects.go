package fsm

import (
	"slices"
	"strings"
)

// validSubject reports whether s is a JetStream subject or filter: non-empty
// dot-separated tokens without whitespace, "*" only as a whole token and ">" only
// as the whole last token.
func validSubject(s string) bool {
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

// SubjectIndex maps subject patterns to the partitions that own them and finds
// which partition, if any, a subject overlaps. The state machine uses it to
// refuse a partition that would overlap another (a message matching both would
// have two owners); the applier uses it to route a delivered message, whose
// concrete subject overlaps exactly the pattern that matches it. The index is a
// token trie; wildcards on either side are matched as JetStream matches filters.
// It is not safe for concurrent use.
type SubjectIndex struct {
	root *subjectNode
}

type subjectNode struct {
	children map[string]*subjectNode
	owner    PartitionID // set when a subject ends at this node
}

// NewSubjectIndex returns an empty index.
func NewSubjectIndex() *SubjectIndex { return &SubjectIndex{root: &subjectNode{}} }

// Add records that p owns subject.
func (x *SubjectIndex) Add(subject string, p PartitionID) {
	n := x.root
	for _, t := range strings.Split(subject, ".") {
		if n.children == nil {
			n.children = make(map[string]*subjectNode)
		}
		c := n.children[t]
		if c == nil {
			c = &subjectNode{}
			n.children[t] = c
		}
		n = c
	}
	n.owner = p
}

// Remove forgets subject's owner.
func (x *SubjectIndex) Remove(subject string) {
	toks := strings.Split(subject, ".")
	path := make([]*subjectNode, 0, len(toks)+1)
	n := x.root
	path = append(path, n)
	for _, t := range toks {
		n = n.children[t]
		if n == nil {
			return
		}
		path = append(path, n)
	}
	n.owner = ""
	// Drop nodes that hold nothing any more, bottom up.
	for i := len(toks) - 1; i >= 0; i-- {
		child := path[i+1]
		if child.owner != "" || len(child.children) > 0 {
			break
		}
		delete(path[i].children, toks[i])
	}
}

// Overlap returns a partition owning a subject that overlaps subject, if any. The
// smallest such partition id is returned, so the answer is deterministic.
func (x *SubjectIndex) Overlap(subject string) (PartitionID, bool) {
	var found []PartitionID
	x.root.overlap(strings.Split(subject, "."), &found)
	if len(found) == 0 {
		return "", false
	}
	return slices.Min(found), true
}

func (n *subjectNode) overlap(q []string, found *[]PartitionID) {
	if len(q) == 0 {
		if n.owner != "" {
			*found = append(*found, n.owner)
		}
		// A stored "x.>" overlaps query "x" only if ">" matched zero tokens,
		// which JetStream does not allow; so nothing more here.
		return
	}
	head, rest := q[0], q[1:]
	if head == ">" {
		// The query matches everything below with at least one more token.
		for _, c := range n.children {
			c.collect(found)
		}
		return
	}
	// A stored "...>" matches any query with >= 1 remaining token.
	if c := n.children[">"]; c != nil && c.owner != "" {
		*found = append(*found, c.owner)
	}
	if head == "*" {
		for tok, c := range n.children {
			if tok != ">" {
				c.overlap(rest, found)
			}
		}
		return
	}
	// A literal token meets only the same literal and a stored "*": look those
	// up instead of walking every child (a node can have 100,000 of them).
	if c := n.children[head]; c != nil {
		c.overlap(rest, found)
	}
	if c := n.children["*"]; c != nil {
		c.overlap(rest, found)
	}
}

func (n *subjectNode) collect(found *[]PartitionID) {
	if n.owner != "" {
		*found = append(*found, n.owner)
	}
	for _, c := range n.children {
		c.collect(found)
	}
}
