package fsm

import "strings"

// validSubject reports whether s is a JetStream subject or filter: non-empty
// dot-separated tokens without whitespace, "*" only as a whole token and ">" only
// as the whole last token.
func validSubject(s string) bool {
	if s == "" || len(s) > MaxSubjectLen {
		return false
	}
	for rest, more := s, true; more; {
		var t string
		t, rest, more = strings.Cut(rest, ".")
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
		if t == ">" && more {
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

// subjectNode is one token of the trie. A stored subject ending in ">" is kept
// in its parent's fwc rather than in a node of its own, and a node's children
// map is made only once it has a child: the usual partition subject
// ("orders.17.>") then costs one small node and one slot in its parent's map,
// where a ">" child and a one-entry map cost over 300 bytes.
type subjectNode struct {
	children map[string]*subjectNode // by token: literals and "*"; nil when none
	owner    PartitionID             // set when a stored subject ends at this node
	fwc      PartitionID             // set when this node's path followed by ">" is stored
}

func (n *subjectNode) empty() bool { return n.owner == "" && n.fwc == "" && len(n.children) == 0 }

// NewSubjectIndex returns an empty index.
func NewSubjectIndex() *SubjectIndex { return &SubjectIndex{root: &subjectNode{}} }

// Add records that p owns subject.
func (x *SubjectIndex) Add(subject string, p PartitionID) {
	n := x.root
	for rest, more := subject, true; more; {
		var t string
		t, rest, more = strings.Cut(rest, ".")
		if t == ">" && !more {
			n.fwc = p
			return
		}
		c := n.children[t]
		if c == nil {
			if n.children == nil {
				n.children = make(map[string]*subjectNode, 1)
			}
			c = &subjectNode{}
			n.children[t] = c
		}
		n = c
	}
	n.owner = p
}

// Remove forgets subject's owner.
func (x *SubjectIndex) Remove(subject string) {
	x.root.remove(subject)
}

// remove clears subject (relative to n) and reports whether n holds nothing any
// more, so that its parent drops it.
func (n *subjectNode) remove(subject string) bool {
	t, rest, more := strings.Cut(subject, ".")
	switch {
	case t == ">" && !more:
		n.fwc = ""
	default:
		c := n.children[t]
		if c == nil {
			return false
		}
		var drop bool
		if more {
			drop = c.remove(rest)
		} else {
			c.owner = ""
			drop = c.empty()
		}
		if drop {
			delete(n.children, t)
			if len(n.children) == 0 {
				n.children = nil
			}
		}
	}
	return n.empty()
}

// Overlap returns a partition owning a subject that overlaps subject, if any. The
// smallest such partition id is returned, so the answer is deterministic.
func (x *SubjectIndex) Overlap(subject string) (PartitionID, bool) {
	var m minOwner
	x.root.overlap(subject, &m)
	return m.id, m.ok
}

// minOwner keeps the smallest partition id offered to it.
type minOwner struct {
	id PartitionID
	ok bool
}

func (m *minOwner) add(id PartitionID) {
	if id != "" && (!m.ok || id < m.id) {
		m.id, m.ok = id, true
	}
}

// overlap finds the stored subjects below n that overlap q, the query's tokens
// still to match (at least one).
func (n *subjectNode) overlap(q string, found *minOwner) {
	head, rest, more := strings.Cut(q, ".")
	if head == ">" {
		// The query matches everything below with at least one more token,
		// including a stored ">" here.
		found.add(n.fwc)
		for _, c := range n.children {
			c.collect(found)
		}
		return
	}
	// A stored "...>" matches any query with >= 1 remaining token.
	found.add(n.fwc)
	if head == "*" {
		for _, c := range n.children {
			c.match(rest, more, found)
		}
		return
	}
	// A literal token meets only the same literal and a stored "*": look those
	// up instead of walking every child (a node can have 100,000 of them).
	if c := n.children[head]; c != nil {
		c.match(rest, more, found)
	}
	if c := n.children["*"]; c != nil {
		c.match(rest, more, found)
	}
}

// match continues overlap at n with the query's remaining tokens, if any.
func (n *subjectNode) match(rest string, more bool, found *minOwner) {
	if more {
		n.overlap(rest, found)
		return
	}
	// The query ends here. A stored "x.>" overlaps query "x" only if ">"
	// matched zero tokens, which JetStream does not allow; so only an owner
	// ending here counts.
	found.add(n.owner)
}

func (n *subjectNode) collect(found *minOwner) {
	found.add(n.owner)
	found.add(n.fwc)
	for _, c := range n.children {
		c.collect(found)
	}
}
