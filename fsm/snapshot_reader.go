package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// snapReader splits a snapshot into its records and keeps the CRC-32C of every
// byte consumed. It reads through one fixed window and hands out each record as
// a slice of it, so a record costs no copy and no allocation: the decoder copies
// out the strings it keeps. A record longer than the window (a request entry
// with thousands of rejected items) is gathered in a buffer that grows as its
// bytes arrive, so that a forged length costs nothing until the data is there.
type snapReader struct {
	r   io.Reader
	buf []byte // the window; buf[off:end] is read and not consumed
	off int
	end int
	// sum is the checksum of the bytes consumed before buf[summed:]; bytes are
	// added to it in runs, when the window moves and at the end.
	sum    uint32
	summed int
	err    error  // the first read error, returned once the window is drained
	big    []byte // a record longer than the window
}

// snapWindow is the read window: larger than almost every record, and large
// enough that a read moves many records at once.
const snapWindow = 64 << 10

func newSnapReader(r io.Reader) *snapReader {
	return &snapReader{r: r, buf: make([]byte, snapWindow)}
}

// fill moves the unconsumed bytes to the front of the window and reads more
// after them. It reports false once the reader has failed or ended and no
// byte was added.
func (sr *snapReader) fill() bool {
	if sr.err != nil {
		return false
	}
	sr.sum = crc32.Update(sr.sum, castagnoli, sr.buf[sr.summed:sr.off])
	n := copy(sr.buf, sr.buf[sr.off:sr.end])
	sr.off, sr.end, sr.summed = 0, n, 0
	// A reader may return no bytes and no error now and then; one that keeps
	// doing so makes no progress (bufio gives up the same way).
	for range 100 {
		m, err := sr.r.Read(sr.buf[sr.end:])
		sr.end += m
		if err != nil {
			sr.err = err
		}
		if m > 0 || err != nil {
			return m > 0
		}
	}
	sr.err = io.ErrNoProgress
	return false
}

// readErr is the error for input that ended (or failed) before what it
// announced.
func (sr *snapReader) readErr() error {
	if sr.err == nil || errors.Is(sr.err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return sr.err
}

// take consumes the next n bytes (n at most the window) and returns them; they
// are valid until the following call.
func (sr *snapReader) take(n int) ([]byte, error) {
	for sr.end-sr.off < n {
		if !sr.fill() {
			return nil, sr.readErr()
		}
	}
	b := sr.buf[sr.off : sr.off+n]
	sr.off += n
	return b, nil
}

// next returns the next record, or nil at the end marker. The record is valid
// until the following call.
func (sr *snapReader) next() ([]byte, error) {
	var n uint64
	for {
		v, k := binary.Uvarint(sr.buf[sr.off:sr.end])
		if k > 0 {
			n = v
			sr.off += k
			break
		}
		if k < 0 {
			return nil, errors.New("record length: varint overflows")
		}
		if !sr.fill() {
			return nil, fmt.Errorf("record length: %w", sr.readErr())
		}
	}
	if n == 0 {
		return nil, nil // the end marker; the checksum follows
	}
	if n > maxRecordLen {
		return nil, fmt.Errorf("record length %d", n)
	}
	if n <= uint64(len(sr.buf)) {
		rec, err := sr.take(int(n))
		if err != nil {
			return nil, fmt.Errorf("record: %w", err)
		}
		return rec, nil
	}
	sr.big = sr.big[:0]
	for {
		take := min(uint64(sr.end-sr.off), n-uint64(len(sr.big)))
		sr.big = append(sr.big, sr.buf[sr.off:sr.off+int(take)]...)
		sr.off += int(take)
		if uint64(len(sr.big)) == n {
			return sr.big, nil
		}
		if !sr.fill() {
			return nil, fmt.Errorf("record: %w", sr.readErr())
		}
	}
}

// trailer checks the 4-byte checksum that follows the end marker (the
// checksum covers everything before it) and that nothing follows it.
func (sr *snapReader) trailer() error {
	want := crc32.Update(sr.sum, castagnoli, sr.buf[sr.summed:sr.off])
	sr.summed = sr.off
	t, err := sr.take(4)
	if err != nil {
		return fmt.Errorf("trailer: %w", err)
	}
	if got := binary.BigEndian.Uint32(t); got != want {
		return fmt.Errorf("checksum %08x, want %08x", got, want)
	}
	if sr.end > sr.off || sr.fill() {
		return errors.New("bytes after trailer")
	}
	if !errors.Is(sr.err, io.EOF) {
		return fmt.Errorf("after trailer: %w", sr.err)
	}
	return nil
}
