package fsm

import (
	"encoding/binary"
	"fmt"
)

// The binary encoding shared by commands, events and snapshots: unsigned varints
// for integers and lengths, zigzag varints for signed ones, length-prefixed
// strings. The decoder checks every length against the bytes left before it
// allocates, so hostile input yields ErrCorrupt and never a panic or a huge
// allocation.

// maxStringLen bounds a decoded string that has no limit of its own (in
// snapshots, which carry a checksum).
const maxStringLen = 1 << 16

type encoder struct{ buf []byte }

func (e *encoder) u8(v uint8)       { e.buf = append(e.buf, v) }
func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *encoder) bool(b bool) {
	if b {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

func (e *encoder) strs(ss []string) {
	e.uvarint(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

type decoder struct {
	buf []byte
	err error
	// lenient lifts the fields' own limits (to maxStringLen), so that tests
	// can build commands that break them from arbitrary bytes.
	lenient bool
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
}

func (d *decoder) u8() uint8 {
	if d.err != nil {
		return 0
	}
	if len(d.buf) < 1 {
		d.fail("truncated")
		return 0
	}
	v := d.buf[0]
	d.buf = d.buf[1:]
	return v
}

func (d *decoder) bool() bool {
	switch d.u8() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("bad bool")
	return false
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.buf) > 0 && d.buf[0] < 0x80 {
		// One byte: most lengths, counts and small numbers.
		v := d.buf[0]
		d.buf = d.buf[1:]
		return uint64(v)
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) u32() uint32 {
	v := d.uvarint()
	if v > 1<<32-1 {
		d.fail("uint32 out of range")
		return 0
	}
	return uint32(v)
}

func (d *decoder) str() string { return d.strMax(maxStringLen) }

// strMax reads a string of at most max bytes: a field's limit (limits.go) is
// enforced by the decoder exactly as by the check before proposing.
func (d *decoder) strMax(max int) string {
	return string(d.bytes(max))
}

// bytes reads a string of at most max bytes without copying it: the result
// shares the input's memory.
func (d *decoder) bytes(max int) []byte {
	if d.lenient {
		max = maxStringLen
	}
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(max) || n > uint64(len(d.buf)) {
		d.fail("string of %d bytes (limit %d, %d bytes left)", n, max, len(d.buf))
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}

// count reads a collection length, checking that at least min bytes per element
// remain, so that a forged length cannot make us allocate.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.buf)/min) {
		d.fail("count %d exceeds input", n)
		return 0
	}
	return int(n)
}

// done reports an error if bytes remain: an encoding is exactly one value.
func (d *decoder) done() error {
	if d.err == nil && len(d.buf) > 0 {
		d.fail("%d trailing bytes", len(d.buf))
	}
	return d.err
}

// items decodes a collection of n elements of at least min bytes each.
func items[T any](d *decoder, min int, one func() T) []T {
	n := d.count(min)
	if n == 0 {
		return nil
	}
	out := make([]T, n)
	for i := range out {
		out[i] = one()
		if d.err != nil {
			return nil
		}
	}
	return out
}
