package raftnode

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// testLimits are small enough to reach in a unit test: entries of 64 KiB.
var testLimits = limitsFor(minCommandBytes)

// clientHandle is the msgpack handle hashicorp/raft's client encodes
// requests with (getConn: TimeNotBuiltin unless the new time format is on).
func clientHandle() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.TimeNotBuiltin = true
	return h
}

// encodeRPC frames one request as hashicorp/raft's client writes it: the rpc
// type byte, then the msgpack request with the handle sendRPC uses.
func encodeRPC(t testing.TB, rpc byte, req any) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteByte(rpc)
	enc := codec.NewEncoder(&buf, clientHandle())
	if err := enc.Encode(req); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func appendEntries(n, dataLen int) *raft.AppendEntriesRequest {
	req := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n1"), Addr: []byte("127.0.0.1:7001")},
		Term:      7, PrevLogEntry: 41, PrevLogTerm: 7, LeaderCommitIndex: 40,
	}
	for i := range n {
		req.Entries = append(req.Entries, &raft.Log{
			Index: uint64(42 + i), Term: 7, Type: raft.LogCommand,
			Data: bytes.Repeat([]byte{'x'}, dataLen), AppendedAt: time.Unix(1700000000, 0),
		})
	}
	return req
}

func installSnapshot(size int64) *raft.InstallSnapshotRequest {
	return &raft.InstallSnapshotRequest{
		RPCHeader:       raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n1"), Addr: []byte("127.0.0.1:7001")},
		SnapshotVersion: raft.SnapshotVersionMax, Term: 7, LastLogIndex: 900, LastLogTerm: 7,
		Configuration: []byte("configuration"), ConfigurationIndex: 3, Size: size,
	}
}

// feed scans b in chunks of the given sizes (cycled), as reads of a
// connection would deliver it.
func feed(g *msgGuard, b []byte, chunks ...int) error {
	for i := 0; len(b) > 0; i++ {
		k := min(len(b), chunks[i%len(chunks)])
		if err := g.scan(b[:k]); err != nil {
			return err
		}
		b = b[k:]
	}
	return nil
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestMsgGuard_AcceptsWhatRaftSends: every request hashicorp/raft sends, up to
// a full AppendEntries of the largest commands, back to back as a pipeline
// sends them, and an InstallSnapshot whose data is far larger than the message
// bound, passes in any chunking; the guard ends between requests.
func TestMsgGuard_AcceptsWhatRaftSends(t *testing.T) {
	full := encodeRPC(t, rpcAppendEntries, appendEntries(maxAppendEntries, minCommandBytes))
	if int64(len(full)) > testLimits.maxBytes {
		t.Fatalf("a full AppendEntries is %d bytes, over the bound %d", len(full), testLimits.maxBytes)
	}
	snapData := make([]byte, 3*testLimits.maxBytes)
	tests := []struct {
		name   string
		stream []byte
	}{
		{"heartbeat", encodeRPC(t, rpcAppendEntries, &raft.AppendEntriesRequest{Term: 7, RPCHeader: raft.RPCHeader{Addr: []byte("127.0.0.1:7001")}})},
		{"full AppendEntries of the largest commands", full},
		{"pipelined AppendEntries back to back", cat(
			encodeRPC(t, rpcAppendEntries, appendEntries(3, 100)), full,
			encodeRPC(t, rpcAppendEntries, appendEntries(maxAppendEntries, 10)), full)},
		{"votes and TimeoutNow", cat(
			encodeRPC(t, rpcRequestPreVote, &raft.RequestPreVoteRequest{Term: 8, LastLogIndex: 9}),
			encodeRPC(t, rpcRequestVote, &raft.RequestVoteRequest{Term: 8, LastLogIndex: 9, LeadershipTransfer: true}),
			encodeRPC(t, rpcTimeoutNow, &raft.TimeoutNowRequest{}))},
		{"InstallSnapshot larger than the message bound after other requests", cat(
			encodeRPC(t, rpcRequestVote, &raft.RequestVoteRequest{Term: 8}),
			encodeRPC(t, rpcInstallSnapshot, installSnapshot(int64(len(snapData)))), snapData)},
		{"InstallSnapshot of nothing", encodeRPC(t, rpcInstallSnapshot, installSnapshot(0))},
	}
	for _, tt := range tests {
		for _, chunks := range [][]int{{len(tt.stream)}, {1}, {7, 1, 4096, 3}, {256 << 10}} {
			g := newMsgGuard(testLimits)
			if err := feed(g, tt.stream, chunks...); err != nil {
				t.Fatalf("%s, chunks %v: %v", tt.name, chunks[:min(len(chunks), 4)], err)
			}
			if g.inReq || g.snapLeft != 0 || g.skip != 0 || g.hdrNeed != 0 {
				t.Fatalf("%s: guard stopped inside a request: %+v", tt.name, g)
			}
		}
	}
}

// TestMsgGuard_Refuses: what no raft peer sends is refused at the first byte
// that proves it, before the decoder would allocate for it.
func TestMsgGuard_Refuses(t *testing.T) {
	marked := appendEntries(1, 0)
	marked.Entries[0].Data = []byte("MARKER")
	small := encodeRPC(t, rpcAppendEntries, marked)
	// forge replaces the entry data header and data ("\xa6MARKER") by raw.
	forge := func(raw ...byte) []byte {
		i := bytes.Index(small, []byte("\xa6MARKER"))
		return cat(small[:i], raw)
	}
	u32 := func(b byte, n uint32) []byte { return binary.BigEndian.AppendUint32([]byte{b}, n) }
	// mapOf is a top-level map of one key with the raw value.
	mapOf := func(rpc byte, key string, raw ...byte) []byte {
		return cat([]byte{rpc, 0x81, 0xa0 | byte(len(key))}, []byte(key), raw)
	}
	// Entries of the largest commands, more than fit in the message bound.
	over := appendEntries(int(testLimits.maxBytes/minCommandBytes)+1, minCommandBytes)
	tests := []struct {
		name   string
		stream []byte
		want   string
	}{
		{"entry data declaring 4 GiB as str32", forge(u32(0xdb, 0xfffffff0)...), "value of 4294967280 bytes"},
		{"entry data declaring 4 GiB as bin32", forge(u32(0xc6, 0xfffffff0)...), "value of 4294967280 bytes"},
		{"entry data one byte over the command bound", forge(u32(0xdb, minCommandBytes+1)...), "over 65536"},
		{"entries array declaring 4 billion entries", mapOf(rpcAppendEntries, "Entries", u32(0xdd, 0xffffffff)...), "container of 4294967295"},
		{"top-level map32 declaring 4 billion entries", cat([]byte{rpcAppendEntries}, u32(0xdf, 0xffffffff)), "container of"},
		{"a request over the message bound", encodeRPC(t, rpcAppendEntries, over), "AppendEntries over 4325376 bytes"},
		{"nesting deeper than raft's", cat([]byte{rpcTimeoutNow, 0x81, 0xa1, 'x'}, bytes.Repeat([]byte{0x91}, maxDepth)), "nests deeper"},
		{"top-level value not a map", []byte{rpcTimeoutNow, 0x91, 0x01}, "not a map"},
		{"integer map key", []byte{rpcTimeoutNow, 0x81, 0x01, 0x01}, "map key"},
		{"array map key, which the decoder reads as a string", []byte{rpcInstallSnapshot, 0x81, 0x94, 'S', 'i', 'z', 'e', 0x01}, "map key"},
		{"InstallSnapshot Size as a float", mapOf(rpcInstallSnapshot, "Size", 0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0), "Size of type"},
		{"InstallSnapshot Size as a string", mapOf(rpcInstallSnapshot, "Size", 0xa1, '9'), "Size of type"},
		{"a request after an InstallSnapshot's data", cat(mapOf(rpcInstallSnapshot, "Size", 0x02), []byte("ab"), small), "after an InstallSnapshot"},
		{"a request after an InstallSnapshot with a negative Size", cat(mapOf(rpcInstallSnapshot, "Size", 0xff), small), "after an InstallSnapshot"},
		{"unknown rpc type", []byte{9, 0x80}, "unknown rpc type 9"},
		{"the unused msgpack byte", []byte{rpcTimeoutNow, 0x81, 0xa1, 'x', 0xc1}, "0xc1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunks := range [][]int{{len(tt.stream)}, {1}} {
				err := feed(newMsgGuard(testLimits), tt.stream, chunks...)
				if !errors.Is(err, errMessageLimit) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("chunks %v: got %v, want a refusal saying %q", chunks, err, tt.want)
				}
			}
		})
	}
}

// TestMsgGuard_SnapshotSizeAsTheDecoderReadsIt: the data after an
// InstallSnapshot is exactly the decoder's Size: the last of repeated keys, a
// negative one as none, nil as zero; a key that only resembles "Size" is not it.
func TestMsgGuard_SnapshotSizeAsTheDecoderReadsIt(t *testing.T) {
	tests := []struct {
		name string
		obj  []byte // the msgpack object after the rpc type byte
		want int64
	}{
		{"uint16", []byte{0x81, 0xa4, 'S', 'i', 'z', 'e', 0xcd, 0x01, 0x00}, 256},
		{"int64", []byte{0x81, 0xa4, 'S', 'i', 'z', 'e', 0xd3, 0, 0, 0, 0, 0, 0, 0x10, 0}, 4096},
		{"bin key", []byte{0x81, 0xc4, 4, 'S', 'i', 'z', 'e', 0x05}, 5},
		{"last repeated key wins", []byte{0x82, 0xa4, 'S', 'i', 'z', 'e', 0xce, 0x7f, 0, 0, 0, 0xa4, 'S', 'i', 'z', 'e', 0x03}, 3},
		{"negative", []byte{0x81, 0xa4, 'S', 'i', 'z', 'e', 0xd0, 0x80}, 0},
		{"uint64 wrapping negative", []byte{0x81, 0xa4, 'S', 'i', 'z', 'e', 0xcf, 0xff, 0, 0, 0, 0, 0, 0, 1}, 0},
		{"nil", []byte{0x81, 0xa4, 'S', 'i', 'z', 'e', 0xc0}, 0},
		{"other case", []byte{0x81, 0xa4, 's', 'i', 'z', 'e', 0x05}, 0},
		{"nested, not top-level", []byte{0x81, 0xa1, 'x', 0x81, 0xa4, 'S', 'i', 'z', 'e', 0x05}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newMsgGuard(testLimits)
			if err := feed(g, cat([]byte{rpcInstallSnapshot}, tt.obj), 1); err != nil {
				t.Fatal(err)
			}
			if g.snapLeft != tt.want {
				t.Fatalf("guard expects %d bytes of data, want %d", g.snapLeft, tt.want)
			}
			if got := decodedSize(t, tt.obj); max(got, 0) != tt.want {
				t.Fatalf("the decoder reads Size %d, test wants %d", got, tt.want)
			}
		})
	}
}

func decodedSize(t *testing.T, obj []byte) int64 {
	t.Helper()
	var req raft.InstallSnapshotRequest
	if err := codec.NewDecoderBytes(obj, &codec.MsgpackHandle{}).Decode(&req); err != nil {
		t.Fatal(err)
	}
	return req.Size
}

// FuzzMsgGuard_FramesAsTheDecoder: on any bytes, the requests the guard lets
// through end exactly where hashicorp/raft's handler, decoding the same bytes,
// ends them, and an InstallSnapshot's data has the same length for both. A
// guard that framed differently would let bytes it never checked reach the
// decoder.
func FuzzMsgGuard_FramesAsTheDecoder(f *testing.F) {
	f.Add(encodeRPC(f, rpcAppendEntries, appendEntries(2, 10)))
	f.Add(cat(encodeRPC(f, rpcAppendEntries, appendEntries(1, 3)), encodeRPC(f, rpcRequestVote, &raft.RequestVoteRequest{Term: 3})))
	f.Add(cat(encodeRPC(f, rpcInstallSnapshot, installSnapshot(5)), []byte("12345")))
	f.Add(cat(encodeRPC(f, rpcTimeoutNow, &raft.TimeoutNowRequest{}), encodeRPC(f, rpcRequestPreVote, &raft.RequestPreVoteRequest{Term: 1})))
	f.Add([]byte{rpcInstallSnapshot, 0x82, 0xa4, 'S', 'i', 'z', 'e', 0x02, 0xa4, 'S', 'i', 'z', 'e', 0x01, 'a', 'b'})
	f.Add([]byte{rpcAppendEntries, 0x81, 0xa7, 'E', 'n', 't', 'r', 'i', 'e', 's', 0x91, 0x81, 0xa4, 'D', 'a', 't', 'a', 0x92, 0x01, 0x02})
	// Unknown fields, which the decoder skips: nested containers and extensions.
	f.Add([]byte{rpcTimeoutNow, 0x82, 0xa1, 'Z', 0x92, 0xd4, 0x01, 0x05, 0x81, 0xa1, 'q', 0xc7, 0x02, 0x07, 'a', 'b', 0xa2, 'I', 'D', 0xc4, 0x01, 'x'})
	f.Fuzz(func(t *testing.T, stream []byte) {
		// The guard, a byte at a time: the offsets where requests end, and
		// the prefix it lets through.
		g := newMsgGuard(testLimits)
		var ends []int
		passed := len(stream)
		for i := range stream {
			wasIn, wasSnap := g.inReq, g.snapLeft > 0
			if err := g.scan(stream[i : i+1]); err != nil {
				passed = i
				break
			}
			if (wasIn && !g.inReq && g.snapLeft == 0) || (wasSnap && g.snapLeft == 0) {
				ends = append(ends, i+1)
			}
		}
		// hashicorp's handler on that prefix: type byte, decode, snapshot
		// data through a LimitReader, for as long as requests decode.
		src := bytes.NewReader(stream[:passed])
		r := bufio.NewReader(src)
		dec := codec.NewDecoder(r, &codec.MsgpackHandle{})
		consumed := func() int { return passed - src.Len() - r.Buffered() }
		for n := 0; ; n++ {
			rpc, err := r.ReadByte()
			if err != nil {
				return
			}
			var size int64
			switch rpc {
			case rpcAppendEntries:
				err = dec.Decode(&raft.AppendEntriesRequest{})
			case rpcRequestVote:
				err = dec.Decode(&raft.RequestVoteRequest{})
			case rpcRequestPreVote:
				err = dec.Decode(&raft.RequestPreVoteRequest{})
			case rpcTimeoutNow:
				err = dec.Decode(&raft.TimeoutNowRequest{})
			case rpcInstallSnapshot:
				var req raft.InstallSnapshotRequest
				err = dec.Decode(&req)
				size = req.Size
			default:
				return
			}
			if err != nil {
				return // the handler closes the connection
			}
			if rpc == rpcInstallSnapshot {
				k, _ := io.Copy(io.Discard, io.LimitReader(r, size))
				if k < size {
					return // the data is cut short: the install fails
				}
			}
			if n >= len(ends) || consumed() != ends[n] {
				t.Fatalf("request %d (rpc %d): the decoder ends it at %d, the guard's ends are %v", n, rpc, consumed(), ends)
			}
		}
	})
}

// TestMsgGuard_RandomChunkingsAgree: the guard's verdict on a stream does not
// depend on how reads split it.
func TestMsgGuard_RandomChunkingsAgree(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	streams := [][]byte{
		cat(encodeRPC(t, rpcAppendEntries, appendEntries(5, 3000)), encodeRPC(t, rpcInstallSnapshot, installSnapshot(70000)), make([]byte, 70000)),
		cat(encodeRPC(t, rpcAppendEntries, appendEntries(2, 10)), []byte{rpcAppendEntries}, binary.BigEndian.AppendUint32([]byte{0xdf}, 0xffffffff)),
	}
	for i, s := range streams {
		want := feed(newMsgGuard(testLimits), s, len(s)) == nil
		for range 50 {
			chunks := []int{1 + rng.IntN(300), 1 + rng.IntN(5), 1 + rng.IntN(70000)}
			if got := feed(newMsgGuard(testLimits), s, chunks...) == nil; got != want {
				t.Fatalf("stream %d, chunks %v: accepted %v, whole %v", i, chunks, got, want)
			}
		}
	}
}
