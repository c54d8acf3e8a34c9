package consumer

import (
	"strings"

	"github.com/batonhq/baton/fsm"
)

// matcher finds the partition whose subject patterns match a concrete subject.
// Partitions never overlap (the claim store refuses it), so at most one does.
type matcher struct {
	root *mnode
}

type mnode struct {
	next map[string]*mnode
	star *mnode
	gt   fsm.PartitionID // a pattern ending in ">" at this node
	end  fsm.PartitionID // a pattern ending exactly here
}

func newMatcher() *matcher { return &matcher{root: &mnode{}} }

func (m *matcher) add(pattern string, p fsm.PartitionID) {
	n := m.root
	for _, t := range strings.Split(pattern, ".") {
		switch t {
		case ">":
			n.gt = p
			return
		case "*":
			if n.star == nil {
				n.star = &mnode{}
			}
			n = n.star
		default:
			if n.next == nil {
				n.next = make(map[string]*mnode)
			}
			c := n.next[t]
			if c == nil {
				c = &mnode{}
				n.next[t] = c
			}
			n = c
		}
	}
	n.end = p
}

// match returns the partition whose pattern matches subject.
func (m *matcher) match(subject string) (fsm.PartitionID, bool) {
	p := m.root.match(strings.Split(subject, "."))
	return p, p != ""
}

func (n *mnode) match(toks []string) fsm.PartitionID {
	if len(toks) == 0 {
		return n.end
	}
	if n.gt != "" {
		return n.gt
	}
	if c := n.next[toks[0]]; c != nil {
		if p := c.match(toks[1:]); p != "" {
			return p
		}
	}
	if n.star != nil {
		return n.star.match(toks[1:])
	}
	return ""
}
