package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"slices"
	"testing"
)

// allocated returns the bytes fn allocated on the heap. Fuzz targets run one
// input at a time per process, so nothing else allocates meanwhile to speak
// of; the bounds they check leave room for that.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// allocBound is what reading n bytes of hostile input may allocate: a constant
// for the reader's own structures plus a small multiple of the input (buffers
// grow by doubling as bytes arrive). A forged 64 MiB frame or 4 GiB base
// length blows through it.
func allocBound(n int) uint64 { return 1<<20 + 16*uint64(n) }

// record is one decoded record of a section.
type record struct {
	kind byte
	data []byte
}

// readSection reads a whole section from data with the frame reader (no
// record semantics): its records and how many bytes of data it consumed.
func readSection(data []byte) (recs []record, consumed int, err error) {
	r := bytes.NewReader(data)
	fr, err := newFrameReader(r)
	if err != nil {
		return nil, 0, err
	}
	for {
		kind, d, ok, err := fr.next()
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			break
		}
		recs = append(recs, record{kind, bytes.Clone(d)})
	}
	if err := fr.trailer(); err != nil {
		return nil, 0, err
	}
	return recs, len(data) - r.Len(), nil
}

// writeSection frames records as Snap.WriteTo does.
func writeSection(tb testing.TB, recs []record) []byte {
	tb.Helper()
	var buf bytes.Buffer
	fw := newFrameWriter(&buf)
	for _, r := range recs {
		fw.record(r.kind, r.data)
	}
	if err := fw.finish(); err != nil {
		tb.Fatalf("write section: %v", err)
	}
	if fw.n != int64(buf.Len()) {
		tb.Fatalf("frame writer counted %d bytes, wrote %d", fw.n, buf.Len())
	}
	return buf.Bytes()
}

// recordsFrom derives records from fuzz input: kind, length byte, then that
// many bytes; a length byte with the high bit set stands for (l&0x7f)*4 KiB of
// filler, so that records cross the frame target (256 KiB) and fill frames.
func recordsFrom(data []byte) []record {
	var out []record
	fill := 0
	for len(data) >= 2 {
		kind, l := data[0], int(data[1])
		data = data[2:]
		if l&0x80 != 0 && fill < 8 {
			fill++
			out = append(out, record{kind, bytes.Repeat([]byte{kind}, (l&0x7f)<<12)})
			continue
		}
		l = min(l&0x7f, len(data))
		out = append(out, record{kind, data[:l]})
		data = data[l:]
	}
	return out
}

func sameRecords(a, b []record) bool {
	return slices.EqualFunc(a, b, func(x, y record) bool { return x.kind == y.kind && bytes.Equal(x.data, y.data) })
}

// FuzzFrames reads the snapshot section's framing (framing.go: frameReader,
// below Restore's record semantics).
//
//   - Round trip: records derived from the input, framed by frameWriter, read
//     back identical, and the reader stops exactly at the section's end.
//   - Arbitrary input never panics and allocates at most allocBound of its
//     length. A section it accepts re-frames to the same records, and every
//     proper prefix of it is refused (each end inside a section is premature).
func FuzzFrames(f *testing.F) {
	f.Add([]byte{})
	f.Add(writeSection(f, nil))
	f.Add(writeSection(f, []record{{recHeader, uv(0, 0, 3)}, {recBase, []byte("abc")}, {recEnd, uv(0)}}))
	f.Add([]byte{1, 3, 'a', 'b', 'c', 2, 0x80 | 70, 3, 0x80 | 63, 4, 1, 0})
	for _, name := range []string{"frame-length-forged-4GiB", "frame-length-forged-64MiB", "frame-truncated", "record-length-forged"} {
		f.Add(frameSeeds()[name])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Arbitrary bytes as a section.
		var recs []record
		var consumed int
		var err error
		if n := allocated(func() { recs, consumed, err = readSection(data) }); n > allocBound(len(data)) {
			t.Fatalf("reading %d bytes allocated %d", len(data), n)
		}
		if err == nil {
			if _, _, err := readSection(writeSection(t, recs)); err != nil {
				t.Fatalf("accepted records do not re-frame: %v", err)
			}
			for _, cut := range []int{0, consumed / 2, consumed - 1} {
				if _, _, err := readSection(data[:cut]); err == nil {
					t.Fatalf("the first %d of %d bytes read as a whole section", cut, consumed)
				}
			}
		}

		// Round trip, with something after the section.
		want := recordsFrom(data)
		sec := writeSection(t, want)
		got, consumed, err := readSection(append(sec, "tail"...))
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if consumed != len(sec) {
			t.Fatalf("reader consumed %d bytes of a %d-byte section", consumed, len(sec))
		}
		if !sameRecords(got, want) {
			t.Fatalf("round trip: %d records, want %d", len(got), len(want))
		}
	})
}

// frameSeeds returns sections with notable framing faults (also committed
// under testdata/fuzz/FuzzFrames).
func frameSeeds() map[string][]byte {
	return map[string][]byte{
		// A length with the high bit set: refused before reading on.
		"frame-length-forged-4GiB": append([]byte("BATONAUD\x01"), 0xff, 0xff, 0xff, 0xff, 1, 2, 3),
		// The largest legal frame length, with three bytes behind it.
		"frame-length-forged-64MiB": append(append([]byte("BATONAUD\x01"), binary.BigEndian.AppendUint32(nil, maxFrame)...), 1, 2, 3),
		"frame-truncated":           append([]byte("BATONAUD\x01"), 0, 0, 0, 9, 2, 1, 'x'),
		// A record claiming more than its frame holds.
		"record-length-forged": append([]byte("BATONAUD\x01"), 0, 0, 0, 3, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0),
	}
}

// TestFrameReaderForgedLengths: a forged frame length costs nothing until its
// bytes arrive, and the reader reports an unexpected EOF, not a clean one. Not
// parallel: allocated measures the whole process.
func TestFrameReaderForgedLengths(t *testing.T) {
	for name, data := range frameSeeds() {
		t.Run(name, func(t *testing.T) {
			var err error
			if n := allocated(func() { _, _, err = readSection(data) }); n > allocBound(len(data)) {
				t.Fatalf("allocated %d bytes for %d of input", n, len(data))
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if errors.Is(err, io.EOF) {
				t.Fatalf("clean EOF inside a section: %v", err)
			}
		})
	}
}

// FuzzUvarints reads the integer lists inside records (framing.go: uvarints,
// used for the header and the end record): it either refuses the input or
// returns exactly n values, which re-encode to input that parses to the same
// values and is no longer than the original.
func FuzzUvarints(f *testing.F) {
	f.Add(uv(0, 9, 1234), uint8(3))
	f.Add(uv(1<<63, 1<<64-1), uint8(2))
	f.Add([]byte{0x80, 0x00}, uint8(1)) // a non-minimal zero
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, uint8(1))
	f.Add(uv(5, 6), uint8(1)) // trailing bytes
	f.Fuzz(func(t *testing.T, b []byte, n uint8) {
		vs, err := uvarints(b, int(n%4))
		if err != nil {
			return
		}
		if len(vs) != int(n%4) {
			t.Fatalf("%d values, want %d", len(vs), n%4)
		}
		enc := uv(vs...)
		if len(enc) > len(b) {
			t.Fatalf("re-encoding %v is longer than the input", vs)
		}
		again, err := uvarints(enc, len(vs))
		if err != nil || !slices.Equal(again, vs) {
			t.Fatalf("re-encoding %v reads back as %v, %v", vs, again, err)
		}
	})
}
