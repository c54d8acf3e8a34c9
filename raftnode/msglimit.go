package raftnode

import (
	"errors"
	"fmt"
)

// The raft port's bound on one incoming request (DESIGN.md, "The raft port
// bounds one message"). hashicorp/raft's NetworkTransport decodes each request
// with go-msgpack straight from the connection, and go-msgpack trusts declared
// lengths: it grows a string towards its declared length 256 KiB at a time,
// copying as it goes, and allocates a ~100-byte log entry for every 1-byte
// element of the entries array. Neither can be configured through the
// transport, so the stream layer follows the requests as their bytes pass
// through (msgGuard) and refuses one that exceeds these bounds before the
// decoder sees the offending bytes.
const (
	// maxAppendEntries is raft's MaxAppendEntries: the most log entries a
	// leader puts in one AppendEntries. It is raft's default, set explicitly
	// because the message bound is derived from it.
	maxAppendEntries = 64
	// entryOverhead bounds what one log entry adds to an AppendEntries besides
	// its data: field names, index, term, type and timestamp take about 80
	// bytes as hashicorp/raft v1.7.3 encodes them.
	entryOverhead = 1 << 10
	// headerOverhead bounds a request's fields besides its entries: ids,
	// addresses, terms, and an InstallSnapshot's encoded configuration (about
	// 200 bytes per member).
	headerOverhead = 64 << 10
	// maxContainerLen bounds the elements of one msgpack array or the entries
	// of one map. 1024 is raft's own cap on MaxAppendEntries; raft's requests
	// are maps of at most a dozen fields. It also caps the number of log
	// entries one request makes the decoder allocate.
	maxContainerLen = 1024
	// maxDepth bounds nesting; a legitimate request nests three deep (request,
	// entries, entry).
	maxDepth = 8
	// minCommandBytes is the least MaxCommandBytes may be: raft's own
	// configuration entries must fit.
	minCommandBytes = 64 << 10
	// maxCommandBytes is the most MaxCommandBytes may be: the message bound
	// grows 64-fold from it.
	maxCommandBytes = 64 << 20
)

// hashicorp/raft v1.7.3's rpc types: the byte before each request.
const (
	rpcAppendEntries byte = iota
	rpcRequestVote
	rpcInstallSnapshot
	rpcTimeoutNow
	rpcRequestPreVote
)

// msgLimits bounds one incoming request.
type msgLimits struct {
	// maxBytes bounds a request: its type byte and msgpack object, not the
	// snapshot data that follows an InstallSnapshot.
	maxBytes int64
	// maxBlob bounds one string or binary value (a log entry's data).
	maxBlob int64
}

// limitsFor derives the bounds from the largest command a leader proposes:
// a full AppendEntries of the largest commands is the largest legitimate
// request.
func limitsFor(maxCommandBytes int64) msgLimits {
	return msgLimits{
		maxBytes: maxAppendEntries*(maxCommandBytes+entryOverhead) + headerOverhead,
		maxBlob:  maxCommandBytes,
	}
}

// errMessageLimit is what a guarded connection's Read returns once a request
// broke a bound; hashicorp's handler then closes the connection.
var errMessageLimit = errors.New("raftnode: raft request refused")

// msgGuard follows the raft requests arriving on one connection as their
// bytes pass through, without decoding or allocating: each request is its
// rpc type byte and one msgpack object (a map; raft's structs encode as
// maps), and an InstallSnapshot's object is followed by its Size bytes of
// snapshot data, which pass unbounded and unread. Framing by content rather
// than by response makes pipelined AppendEntries, sent back to back before
// any answer, no different from sequential ones.
//
// Only the connection's reading goroutine (hashicorp's handleConn) uses it.
type msgGuard struct {
	lim msgLimits

	inReq bool  // between a request's type byte and the end of its object
	rpc   byte  // the current request's type
	size  int64 // bytes of the current request so far
	stack []frame

	// A header whose length or value bytes are still arriving.
	hdr     [8]byte
	hdrKind byte
	hdrNeed int
	hdrHave int

	skip int64 // bytes of a string, binary or extension value still to pass

	// InstallSnapshot only: the top-level key being read, whether it is
	// "Size", and the Size value, which says how much data follows.
	keyBuf    [4]byte
	keyLen    int
	capture   bool
	sizeNext  bool
	snapSize  int64
	snapLeft  int64
	snapshots bool // an InstallSnapshot was read: nothing may follow its data
}

// frame is an open array or map.
type frame struct {
	left  uint32 // values still to come; a map entry is two
	isMap bool
}

func newMsgGuard(lim msgLimits) *msgGuard {
	return &msgGuard{lim: lim, stack: make([]frame, 0, maxDepth)}
}

// scan consumes the next bytes read from the connection. It returns an error
// wrapping errMessageLimit as soon as they break a bound; the guard must not
// be used after that.
func (g *msgGuard) scan(p []byte) error {
	for len(p) > 0 {
		switch {
		case g.snapLeft > 0:
			k := min(int64(len(p)), g.snapLeft)
			g.snapLeft -= k
			p = p[k:]
			continue
		case g.skip > 0:
			k := min(int64(len(p)), g.skip)
			if g.capture {
				copy(g.keyBuf[g.keyLen:], p[:k])
				g.keyLen += int(k)
			}
			g.skip -= k
			p = p[k:]
			if g.skip == 0 {
				g.capture = false
				if err := g.complete(); err != nil {
					return err
				}
			}
			continue
		}
		b := p[0]
		p = p[1:]
		var err error
		switch {
		case g.hdrNeed > 0:
			err = g.count(1)
			g.hdr[g.hdrHave] = b
			g.hdrHave++
			if err == nil && g.hdrHave == g.hdrNeed {
				g.hdrNeed = 0
				err = g.header()
			}
		case !g.inReq:
			err = g.begin(b)
		default:
			err = g.value(b)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// begin starts a request at its rpc type byte.
func (g *msgGuard) begin(b byte) error {
	if g.snapshots {
		return fmt.Errorf("%w: a request after an InstallSnapshot's data", errMessageLimit)
	}
	if b > rpcRequestPreVote {
		return fmt.Errorf("%w: unknown rpc type %d", errMessageLimit, b)
	}
	g.inReq, g.rpc, g.size = true, b, 1
	g.stack = g.stack[:0]
	g.sizeNext, g.snapSize = false, 0
	return nil
}

// count adds n bytes to the current request.
func (g *msgGuard) count(n int64) error {
	g.size += n
	if g.size > g.lim.maxBytes {
		return fmt.Errorf("%w: %s over %d bytes", errMessageLimit, rpcName(g.rpc), g.lim.maxBytes)
	}
	return nil
}

// keyPos reports whether the next value is a map key.
func (g *msgGuard) keyPos() bool {
	if len(g.stack) == 0 {
		return false
	}
	top := g.stack[len(g.stack)-1]
	return top.isMap && top.left%2 == 0
}

// value reads the first byte of a msgpack value.
func (g *msgGuard) value(b byte) error {
	if err := g.count(1); err != nil {
		return err
	}
	isMap := b&0xf0 == 0x80 || b == 0xde || b == 0xdf
	isBlob := b&0xe0 == 0xa0 || (b >= 0xc4 && b <= 0xc6) || (b >= 0xd9 && b <= 0xdb)
	isInt := b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3)
	switch {
	case len(g.stack) == 0 && !isMap:
		return fmt.Errorf("%w: %s is not a map (type byte 0x%02x)", errMessageLimit, rpcName(g.rpc), b)
	case g.keyPos() && !isBlob:
		// Strings only: a key the guard could not read could be one the
		// decoder takes for "Size".
		return fmt.Errorf("%w: %s has a map key of type byte 0x%02x", errMessageLimit, rpcName(g.rpc), b)
	case g.sizeNext && !isInt && b != 0xc0:
		return fmt.Errorf("%w: InstallSnapshot Size of type byte 0x%02x", errMessageLimit, b)
	}
	switch {
	case b <= 0x7f: // positive fixint
		return g.scalar(int64(b))
	case b >= 0xe0: // negative fixint
		return g.scalar(int64(int8(b)))
	case b <= 0x8f: // fixmap
		return g.container(uint64(b&0x0f), true)
	case b <= 0x9f: // fixarray
		return g.container(uint64(b&0x0f), false)
	case b <= 0xbf: // fixstr
		return g.blob(uint64(b & 0x1f))
	case b == 0xc0, b == 0xc2, b == 0xc3: // nil, false, true
		return g.scalar(0)
	case b == 0xc1:
		return fmt.Errorf("%w: %s holds the unused msgpack byte 0xc1", errMessageLimit, rpcName(g.rpc))
	}
	// The rest carry length or value bytes first.
	g.hdrKind, g.hdrNeed, g.hdrHave = b, headerLen(b), 0
	return nil
}

// headerLen is how many bytes follow a msgpack type byte before the value's
// content: its length, its value, or an extension's length and type.
func headerLen(b byte) int {
	switch b {
	case 0xc4, 0xcc, 0xd0, 0xd9, // bin8, uint8, int8, str8
		0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext: the type
		return 1
	case 0xc5, 0xcd, 0xd1, 0xda, 0xdc, 0xde: // 16-bit lengths and values
		return 2
	case 0xc7: // ext8: length, then the type
		return 2
	case 0xc8: // ext16
		return 3
	case 0xc6, 0xca, 0xce, 0xd2, 0xdb, 0xdd, 0xdf: // 32-bit lengths and values
		return 4
	case 0xc9: // ext32
		return 5
	default: // 0xcb, 0xcf, 0xd3: 64-bit values
		return 8
	}
}

// header completes a value whose header bytes have all arrived.
func (g *msgGuard) header() error {
	h := g.hdr[:g.hdrHave]
	var u uint64
	for _, x := range h {
		u = u<<8 | uint64(x)
	}
	switch k := g.hdrKind; {
	case k == 0xc4 || k == 0xc5 || k == 0xc6 || k == 0xd9 || k == 0xda || k == 0xdb:
		return g.blob(u)
	case k == 0xc7 || k == 0xc8 || k == 0xc9: // length, then a type byte
		return g.blob(u >> 8)
	case k >= 0xd4 && k <= 0xd8: // fixext 1, 2, 4, 8, 16
		return g.blob(1 << (k - 0xd4))
	case k == 0xca || k == 0xcb:
		return g.scalar(0)
	case k >= 0xcc && k <= 0xcf:
		return g.scalar(int64(u)) // as go-msgpack's DecodeInt64: uint64 wraps
	case k >= 0xd0 && k <= 0xd3:
		shift := 64 - 8*len(h)
		return g.scalar(int64(u<<shift) >> shift)
	case k == 0xdc || k == 0xdd:
		return g.container(u, false)
	default: // 0xde, 0xdf
		return g.container(u, true)
	}
}

// scalar completes a value with no content beyond its header.
func (g *msgGuard) scalar(v int64) error {
	if g.sizeNext {
		g.snapSize = v // nil too: the decoder zeroes the field
	}
	return g.complete()
}

// blob starts a string, binary or extension value of n bytes.
func (g *msgGuard) blob(n uint64) error {
	if n > uint64(g.lim.maxBlob) {
		return fmt.Errorf("%w: %s holds a value of %d bytes, over %d", errMessageLimit, rpcName(g.rpc), n, g.lim.maxBlob)
	}
	if err := g.count(int64(n)); err != nil {
		return err
	}
	if g.rpc == rpcInstallSnapshot && len(g.stack) == 1 && g.keyPos() {
		g.keyLen, g.capture = 0, n == uint64(len(g.keyBuf))
	}
	if n == 0 {
		g.capture = false
		return g.complete()
	}
	g.skip = int64(n)
	return nil
}

// container starts an array or map of n elements (map entries).
func (g *msgGuard) container(n uint64, isMap bool) error {
	if n > maxContainerLen {
		return fmt.Errorf("%w: %s holds a container of %d elements, over %d", errMessageLimit, rpcName(g.rpc), n, maxContainerLen)
	}
	if len(g.stack) == maxDepth {
		return fmt.Errorf("%w: %s nests deeper than %d", errMessageLimit, rpcName(g.rpc), maxDepth)
	}
	if n == 0 {
		return g.complete()
	}
	if isMap {
		n *= 2
	}
	g.stack = append(g.stack, frame{left: uint32(n), isMap: isMap})
	return nil
}

// complete ends the current value, and every container it was the last
// value of; the request ends with its top-level map.
func (g *msgGuard) complete() error {
	for {
		if len(g.stack) == 0 {
			g.end()
			return nil
		}
		if len(g.stack) == 1 && g.rpc == rpcInstallSnapshot {
			// A top-level key decides whether the next value is Size; the
			// decoder matches field names exactly, and a repeated key's
			// last value wins there as here.
			g.sizeNext = g.keyPos() && g.keyLen == len(g.keyBuf) && string(g.keyBuf[:]) == "Size"
			g.keyLen = 0
		}
		top := &g.stack[len(g.stack)-1]
		top.left--
		if top.left > 0 {
			return nil
		}
		g.stack = g.stack[:len(g.stack)-1]
	}
}

// end closes a request. An InstallSnapshot's data follows it (the decoder
// reads exactly Size bytes, none when Size is negative) and ends the
// connection: hashicorp/raft closes it after the snapshot.
func (g *msgGuard) end() {
	g.inReq = false
	if g.rpc == rpcInstallSnapshot {
		g.snapLeft = max(g.snapSize, 0)
		g.snapshots = true
	}
}

func rpcName(t byte) string {
	switch t {
	case rpcAppendEntries:
		return "AppendEntries"
	case rpcRequestVote:
		return "RequestVote"
	case rpcInstallSnapshot:
		return "InstallSnapshot"
	case rpcTimeoutNow:
		return "TimeoutNow"
	case rpcRequestPreVote:
		return "RequestPreVote"
	}
	return fmt.Sprintf("rpc %d", t)
}
