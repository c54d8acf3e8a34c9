package fsm

import "strings"

// validSubject reports whether s is a JetStream subject or filter: non-empty
// dot-separated tokens without whitespace or control characters, "*" only as
// a whole token and ">" only as the whole last token. It looks at bytes: every
// byte of a multi-byte UTF-8 sequence is above the control range.
func validSubject(s string) bool {
	if s == "" || len(s) > MaxSubjectLen {
		return false
	}
	start := 0 // of the current token
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if i == start {
				return false // an empty token
			}
			start = i + 1
			continue
		}
		switch c := s[i]; {
		case c <= ' ' || c == 0x7f:
			return false
		case c == '*' || c == '>':
			// A wildcard is a whole token, and ">" the last one.
			if i != start || (i+1 < len(s) && s[i+1] != '.') || (c == '>' && i+1 != len(s)) {
				return false
			}
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
// in its parent's fwc rather than in a node of its own, a "*" child in star
// rather than in the map, and a node's children map is made only once it has
// a literal child: the usual partition subject ("orders.17.>") then costs one
// small node and one slot in its parent's map (where a ">" child and a
// one-entry map cost over 300 bytes), and a literal token is matched with one
// map lookup.
type subjectNode struct {
	children map[string]*subjectNode // by literal token; nil when none
	star     *subjectNode            // the "*" child
	owner    PartitionID             // set when a stored subject ends at this node
	fwc      PartitionID             // set when this node's path followed by ">" is stored
}

func (n *subjectNode) empty() bool {
	return n.owner == "" && n.fwc == "" && n.star == nil && len(n.children) == 0
}

// child returns the child for token t, nil if none.
func (n *subjectNode) child(t string) *subjectNode {
	if t == "*" {
		return n.star
	}
	return n.children[t]
}

// addChild makes and returns a new child for token t.
func (n *subjectNode) addChild(t string) *subjectNode {
	c := &subjectNode{}
	switch {
	case t == "*":
		n.star = c
	case n.children == nil:
		n.children = map[string]*subjectNode{t: c}
	default:
		n.children[t] = c
	}
	return c
}

// dropChild forgets the child for token t.
func (n *subjectNode) dropChild(t string) {
	if t == "*" {
		n.star = nil
		return
	}
	delete(n.children, t)
	if len(n.children) == 0 {
		n.children = nil
	}
}

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
		c := n.child(t)
		if c == nil {
			c = n.addChild(t)
		}
		n = c
	}
	n.owner = p
}

// addNew adds subject for p unless it overlaps a stored subject, and reports
// whether it did. It is Overlap then Add in one walk for the common case, a
// subject without "*" in an index without "*": restoring a snapshot adds
// every partition's subjects this way.
func (x *SubjectIndex) addNew(subject string, p PartitionID) bool {
	n := x.root
	for rest, more := subject, true; more; {
		var t string
		t, rest, more = strings.Cut(rest, ".")
		if n.fwc != "" {
			return false // a stored "....>" matches this token and any after it
		}
		if t == "*" || n.star != nil {
			// Either side's wildcard can meet several branches: the general
			// walk decides.
			if _, hit := x.Overlap(subject); hit {
				return false
			}
			x.Add(subject, p)
			return true
		}
		if t == ">" && !more {
			// Every stored subject below n has at least one more token (the
			// trie keeps no empty node); one ending at n does not meet ">".
			if len(n.children) > 0 {
				return false
			}
			n.fwc = p
			return true
		}
		c := n.children[t]
		if c == nil {
			// Nothing stored continues this way, so nothing below can overlap.
			for c = n.addChild(t); more; c = c.addChild(t) {
				t, rest, more = strings.Cut(rest, ".")
				if t == ">" && !more {
					c.fwc = p
					return true
				}
			}
			c.owner = p
			return true
		}
		n = c
	}
	if n.owner != "" {
		return false
	}
	n.owner = p
	return true
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
		c := n.child(t)
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
			n.dropChild(t)
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
	// A stored "...>" here matches any query with >= 1 remaining token.
	found.add(n.fwc)
	switch head {
	case ">":
		// The query matches everything below with at least one more token.
		if n.star != nil {
			n.star.collect(found)
		}
		for _, c := range n.children {
			c.collect(found)
		}
		return
	case "*":
		if n.star != nil {
			n.star.match(rest, more, found)
		}
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
	if n.star != nil {
		n.star.match(rest, more, found)
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
	if n.star != nil {
		n.star.collect(found)
	}
	for _, c := range n.children {
		c.collect(found)
	}
}
