package audit

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/batonhq/baton/fsm"
)

// maxCursorLen is the longest token String can produce:
// "18446744073709551615.4294967295.-9223372036854775808".
const maxCursorLen = 20 + 1 + 10 + 1 + 20

// String renders c as the token API clients pass back to continue a query:
// "index.seq.time", three decimal numbers (time may be negative). ParseCursor
// reads it back.
func (c Cursor) String() string {
	return fmt.Sprintf("%d.%d.%d", c.Index, c.Seq, c.Time)
}

// ParseCursor reads a token written by Cursor.String. It accepts exactly that
// spelling: three dot-separated decimal numbers in range, without signs
// (except the time's minus), spaces or leading zeros. So every accepted token
// is the String of the cursor returned, and a client cannot smuggle two
// spellings of one position past a cache or a log. It returns an error
// wrapping ErrInvalidQuery otherwise.
func ParseCursor(s string) (Cursor, error) {
	bad := func(why string) (Cursor, error) {
		if len(s) > maxCursorLen {
			s = s[:maxCursorLen] + "..."
		}
		return Cursor{}, fmt.Errorf("%w: cursor %q: %s", ErrInvalidQuery, s, why)
	}
	if len(s) > maxCursorLen {
		return bad("too long")
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return bad("want index.seq.time")
	}
	idx, ok1 := canonicalUint(parts[0], 64)
	seq, ok2 := canonicalUint(parts[1], 32)
	t, ok3 := canonicalInt(parts[2])
	if !ok1 || !ok2 || !ok3 {
		return bad("want three decimal numbers as returned in next")
	}
	return Cursor{Index: fsm.RaftIndex(idx), Seq: uint32(seq), Time: t}, nil
}

// canonicalUint parses s as strconv.FormatUint writes it.
func canonicalUint(s string, bits int) (uint64, bool) {
	if s == "" || s[0] < '0' || s[0] > '9' || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, bits)
	return v, err == nil
}

// canonicalInt parses s as strconv.FormatInt writes it ("-0" is refused).
func canonicalInt(s string) (int64, bool) {
	digits := strings.TrimPrefix(s, "-")
	if _, ok := canonicalUint(digits, 64); !ok || (digits == "0" && s != digits) {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}
