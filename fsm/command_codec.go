package fsm

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Command encoding versions. Version 2 adds the header's digest and a CRC-32C
// of everything before it, so that a replica can tell bytes that were
// corrupted on its own disk (stop: applying them would diverge) from a
// well-formed entry that fails to decode or check (refuse it, as every replica
// does). Version 1 entries, written before, are still read.
const (
	commandVersion1 = 1
	commandVersion  = 2
)

// EncodeCommand returns the binary form of cmd: version, type tag, header, body
// and checksum. It encodes whatever it is given; Config.CheckCommand is what
// keeps a command that would not decode out of the log.
func EncodeCommand(cmd Command) ([]byte, error) {
	if cmd.Body == nil {
		return nil, fmt.Errorf("fsm: encode command: no body")
	}
	t := cmd.Body.Type()
	if t == 0 || t >= cmdTypeEnd {
		return nil, fmt.Errorf("fsm: encode command: %w: type %d", ErrUnknownCommand, t)
	}
	var e encoder
	e.u8(commandVersion)
	e.u8(uint8(t))
	w := walker{mode: walkEncode, enc: &e}
	cmd.Header.walk(&w)
	e.uvarint(cmd.Digest)
	cmd.Body.walk(&w)
	e.buf = binary.LittleEndian.AppendUint32(e.buf, crc32.Checksum(e.buf, crc32.MakeTable(crc32.Castagnoli)))
	return e.buf, nil
}

// DecodeCommand parses the binary form of a command. It never panics, and
// returns an error wrapping:
//   - ErrChecksum when the bytes do not match their checksum (corrupted after
//     they were encoded);
//   - ErrUnsupportedVersion or ErrUnknownCommand when a newer build wrote them;
//   - ErrCorrupt when they are malformed, or a field exceeds its limit.
func DecodeCommand(b []byte) (Command, error) {
	if len(b) == 0 {
		return Command{}, fmt.Errorf("%w: empty command", ErrCorrupt)
	}
	version := b[0]
	switch version {
	case commandVersion:
		if len(b) < 2+4 {
			return Command{}, fmt.Errorf("%w: truncated command", ErrCorrupt)
		}
		n := len(b) - 4
		if crc32.Checksum(b[:n], crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(b[n:]) {
			return Command{}, fmt.Errorf("%w: command of %d bytes", ErrChecksum, len(b))
		}
		b = b[:n]
	case commandVersion1:
	default:
		return Command{}, fmt.Errorf("%w: command version %d", ErrUnsupportedVersion, version)
	}
	d := decoder{buf: b[1:]}
	t := CommandType(d.u8())
	if d.err != nil {
		return Command{}, d.err
	}
	if t == 0 || t >= cmdTypeEnd {
		return Command{}, fmt.Errorf("%w: command type %d", ErrUnknownCommand, t)
	}
	var cmd Command
	w := walker{mode: walkDecode, dec: &d}
	cmd.Header.walk(&w)
	if version == commandVersion {
		cmd.Digest = d.uvarint()
	}
	cmd.Body = commandTypes[t].zero.walk(&w)
	if err := d.done(); err != nil {
		return Command{}, fmt.Errorf("%s command: %w", t, err)
	}
	return cmd, nil
}

// CheckCommand reports whether cmd may be proposed: every field within its
// limit and well-formed, every count within c's bounds. It returns nil or an
// *RejectError (invalid_argument or limit_exceeded) naming the field. A
// command that passes always encodes and decodes to itself; Apply refuses
// one that does not pass, so the check is the same on every replica.
func (c Config) CheckCommand(cmd Command) error {
	if err := c.checkCommand(cmd); err != nil {
		return err
	}
	return nil
}

func (c Config) checkCommand(cmd Command) *RejectError {
	return checkWith(&walker{}, &c, cmd)
}

// checkWith checks cmd against cfg with w, which it resets first.
func checkWith(w *walker, cfg *Config, cmd Command) *RejectError {
	if cmd.Body == nil {
		return reject(CodeInvalidArgument, "command has no body")
	}
	if t := cmd.Body.Type(); t == 0 || t >= cmdTypeEnd {
		return reject(CodeUnknownCommand, "command type %d", t)
	}
	*w = walker{mode: walkCheck, cfg: cfg, path: w.path[:0]}
	cmd.Header.walk(w)
	cmd.Body.walk(w)
	return w.err
}

// bodyHash identifies a command body for the request-id dedupe when the
// header carries no digest. sc's buffer is reused.
func bodyHash(sc *scratch, b Body) uint64 {
	sc.enc.buf = sc.enc.buf[:0]
	sc.w = walker{mode: walkEncode, enc: &sc.enc, path: sc.w.path[:0]}
	b.walk(&sc.w)
	return fnv64a(sc.enc.buf)
}

func fnv64a(b []byte) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, c := range b {
		h ^= uint64(c)
		h *= prime
	}
	return h
}
