package audit

import (
	"bytes"
	"encoding/binary"

	"go.etcd.io/bbolt"
)

// kvCursor is an ascending key-ordered iterator: a bbolt cursor or a view of
// one. A nil key means the end.
type kvCursor interface {
	First() (k, v []byte)
	Seek(seek []byte) (k, v []byte)
	Next() (k, v []byte)
}

var (
	_ kvCursor = (*bbolt.Cursor)(nil)
	_ kvCursor = (*merged)(nil)
	_ kvCursor = (*heldAfter)(nil)
)

// merged walks several key-ordered cursors as one, ascending: the events
// bucket and the checkpoint records (Replay, retention, Bounds), and the held
// events too for a snapshot. A key present in several cursors comes once,
// from the first cursor that has it. Keys and values are bbolt's, valid for
// the transaction.
type merged struct {
	cs     []kvCursor
	ks, vs [][]byte
	// src is the cursor of the entry returned last, -1 at the end.
	src int
}

func newMerged(cs ...kvCursor) *merged {
	return &merged{cs: cs, ks: make([][]byte, len(cs)), vs: make([][]byte, len(cs)), src: -1}
}

// First positions every cursor at its first entry.
func (m *merged) First() ([]byte, []byte) {
	for i, c := range m.cs {
		m.ks[i], m.vs[i] = c.First()
	}
	return m.pick()
}

// Seek positions every cursor at its first key >= seek.
func (m *merged) Seek(seek []byte) ([]byte, []byte) {
	for i, c := range m.cs {
		m.ks[i], m.vs[i] = c.Seek(seek)
	}
	return m.pick()
}

// Next moves past the entry returned last, in every cursor that holds it.
func (m *merged) Next() ([]byte, []byte) {
	if m.src < 0 {
		return nil, nil
	}
	last := m.ks[m.src]
	for i, c := range m.cs {
		if i != m.src && m.ks[i] != nil && bytes.Equal(m.ks[i], last) {
			m.ks[i], m.vs[i] = c.Next()
		}
	}
	m.ks[m.src], m.vs[m.src] = m.cs[m.src].Next()
	return m.pick()
}

// pick returns the smallest current key, preferring the first cursor.
func (m *merged) pick() ([]byte, []byte) {
	m.src = -1
	for i, k := range m.ks {
		if k != nil && (m.src < 0 || bytes.Compare(k, m.ks[m.src]) < 0) {
			m.src = i
		}
	}
	if m.src < 0 {
		return nil, nil
	}
	return m.ks[m.src], m.vs[m.src]
}

// heldAfter is the held bucket as a snapshot taken at clock sees it: the
// events deleted after the snapshot was taken, without their clock prefix.
// An entry too short to carry a clock is skipped.
type heldAfter struct {
	c     *bbolt.Cursor
	clock uint64
}

func (h *heldAfter) First() ([]byte, []byte)        { return h.skip(h.c.First()) }
func (h *heldAfter) Seek(k []byte) ([]byte, []byte) { return h.skip(h.c.Seek(k)) }
func (h *heldAfter) Next() ([]byte, []byte)         { return h.skip(h.c.Next()) }

func (h *heldAfter) skip(k, v []byte) ([]byte, []byte) {
	for k != nil && (len(v) < 8 || binary.BigEndian.Uint64(v) <= h.clock) {
		k, v = h.c.Next()
	}
	if k == nil {
		return nil, nil
	}
	return k, v[8:]
}
