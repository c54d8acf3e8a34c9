package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
)

// Snapshot section format:
//
//	magic "BATONAUD", version (1 byte)
//	frames: length (4 bytes, big endian, <= maxFrame) then that many bytes of
//	        records, each uvarint(1+len) kind data; no record spans frames
//	a zero length (the end of the frames)
//	CRC-32C (4 bytes, big endian) of everything before it
//
// Records: one header (base index, snapshot index, base state length as
// uvarints), base state chunks, events in key order, then one end record (the
// event count). The section says where it ends, so Restore reads exactly its
// own bytes and the stream may go on after it.

var sectionMagic = []byte("BATONAUD")

const (
	sectionVersion = 1
	maxFrame       = 64 << 20 // a frame's largest length; bounds one record
	frameTarget    = 256 << 10
	baseChunk      = 1 << 20
	maxBaseLen     = 4 << 30

	recHeader = 1
	recBase   = 2
	recEvent  = 3
	recEnd    = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameWriter writes a section. The first error sticks.
type frameWriter struct {
	w   io.Writer
	crc hash.Hash32
	n   int64
	buf []byte
	err error
}

func newFrameWriter(w io.Writer) *frameWriter {
	f := &frameWriter{w: w, crc: crc32.New(castagnoli), buf: make([]byte, 0, frameTarget+4096)}
	f.raw(sectionMagic, true)
	f.raw([]byte{sectionVersion}, true)
	return f
}

func (f *frameWriter) raw(b []byte, sum bool) {
	if f.err != nil {
		return
	}
	n, err := f.w.Write(b)
	f.n += int64(n)
	f.err = err
	if sum {
		f.crc.Write(b)
	}
}

func (f *frameWriter) record(kind byte, data []byte) {
	size := 1 + len(data)
	if size+binary.MaxVarintLen64 > maxFrame {
		if f.err == nil {
			f.err = fmt.Errorf("audit: record of %d bytes exceeds the frame bound", size)
		}
		return
	}
	if len(f.buf) > 0 && len(f.buf)+size+binary.MaxVarintLen64 > frameTarget {
		f.flush()
	}
	f.buf = binary.AppendUvarint(f.buf, uint64(size))
	f.buf = append(f.buf, kind)
	f.buf = append(f.buf, data...)
	if len(f.buf) >= frameTarget {
		f.flush()
	}
}

func (f *frameWriter) flush() {
	if len(f.buf) == 0 {
		return
	}
	f.raw(binary.BigEndian.AppendUint32(nil, uint32(len(f.buf))), true)
	f.raw(f.buf, true)
	f.buf = f.buf[:0]
}

// finish ends the frames and writes the checksum.
func (f *frameWriter) finish() error {
	f.flush()
	f.raw([]byte{0, 0, 0, 0}, true)
	f.raw(binary.BigEndian.AppendUint32(nil, f.crc.Sum32()), false)
	return f.err
}

// frameReader reads a section without reading past its end.
type frameReader struct {
	r     io.Reader
	crc   hash.Hash32
	frame bytes.Buffer
	rest  []byte // unread records of the current frame
	ended bool   // the zero length was read
}

func newFrameReader(r io.Reader) (*frameReader, error) {
	f := &frameReader{r: r, crc: crc32.New(castagnoli)}
	head := make([]byte, len(sectionMagic)+1)
	if err := f.full(head); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if !bytes.Equal(head[:len(sectionMagic)], sectionMagic) {
		return nil, errors.New("bad magic")
	}
	if v := head[len(sectionMagic)]; v != sectionVersion {
		return nil, fmt.Errorf("unsupported version %d", v)
	}
	return f, nil
}

func (f *frameReader) full(b []byte) error {
	if _, err := io.ReadFull(f.r, b); err != nil {
		return noEOF(err)
	}
	f.crc.Write(b)
	return nil
}

// noEOF turns a clean EOF into ErrUnexpectedEOF: inside a section every end is
// premature.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// next returns the next record; ok is false after the last frame.
func (f *frameReader) next() (kind byte, data []byte, ok bool, err error) {
	for len(f.rest) == 0 {
		if f.ended {
			return 0, nil, false, nil
		}
		var l [4]byte
		if err := f.full(l[:]); err != nil {
			return 0, nil, false, fmt.Errorf("frame length: %w", err)
		}
		n := binary.BigEndian.Uint32(l[:])
		if n == 0 {
			f.ended = true
			continue
		}
		if n > maxFrame {
			return 0, nil, false, fmt.Errorf("frame length %d", n)
		}
		// CopyN grows the buffer as bytes arrive: a forged length costs
		// nothing until the data is really there.
		f.frame.Reset()
		if _, err := io.CopyN(&f.frame, f.r, int64(n)); err != nil {
			return 0, nil, false, fmt.Errorf("frame: %w", noEOF(err))
		}
		f.crc.Write(f.frame.Bytes())
		f.rest = f.frame.Bytes()
	}
	size, w := binary.Uvarint(f.rest)
	if w <= 0 || size == 0 || size > uint64(len(f.rest)-w) {
		return 0, nil, false, errors.New("bad record length")
	}
	rec := f.rest[w : w+int(size)]
	f.rest = f.rest[w+int(size):]
	return rec[0], rec[1:], true, nil
}

// trailer checks the checksum after the last frame.
func (f *frameReader) trailer() error {
	want := f.crc.Sum32()
	var t [4]byte
	if _, err := io.ReadFull(f.r, t[:]); err != nil {
		return fmt.Errorf("trailer: %w", noEOF(err))
	}
	if got := binary.BigEndian.Uint32(t[:]); got != want {
		return fmt.Errorf("checksum %08x, want %08x", got, want)
	}
	return nil
}

// uvarints parses exactly n uvarints from b.
func uvarints(b []byte, n int) ([]uint64, error) {
	out := make([]uint64, n)
	for i := range out {
		v, w := binary.Uvarint(b)
		if w <= 0 {
			return nil, errors.New("bad varint")
		}
		out[i], b = v, b[w:]
	}
	if len(b) != 0 {
		return nil, errors.New("trailing bytes in record")
	}
	return out, nil
}
