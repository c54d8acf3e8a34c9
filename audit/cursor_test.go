package audit

import (
	"errors"
	"strings"
	"testing"

	"github.com/batonhq/baton/fsm"
)

func TestParseCursor(t *testing.T) {
	t.Parallel()
	ok := map[string]Cursor{
		"0.0.0":                    {},
		"1.2.3":                    {Index: 1, Seq: 2, Time: 3},
		"7.0.-1700000000000000000": {Index: 7, Time: -1700000000000000000},
		"18446744073709551615.4294967295.9223372036854775807":  {Index: 1<<64 - 1, Seq: 1<<32 - 1, Time: 1<<63 - 1},
		"18446744073709551615.4294967295.-9223372036854775808": {Index: 1<<64 - 1, Seq: 1<<32 - 1, Time: -1 << 63},
	}
	for s, want := range ok {
		got, err := ParseCursor(s)
		if err != nil || got != want {
			t.Errorf("ParseCursor(%q) = %+v, %v; want %+v", s, got, err, want)
		}
		if got.String() != s {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), s)
		}
	}
	for _, s := range []string{
		"", "1", "1.2", "1.2.3.4", "..", "1..3", ".1.2", "1.2.",
		"01.2.3", "1.02.3", "1.2.03", "1.2.-0", "1.2.-03", "-1.2.3", "1.-2.3", "+1.2.3", "1.+2.3", "1.2.+3",
		" 1.2.3", "1.2.3 ", "1.2.3\n", "1.2.3\x00", "0x1.2.3", "1e3.2.3", "1_0.2.3", "١.٢.٣",
		"18446744073709551616.0.0", "1.4294967296.0", "1.2.9223372036854775808", "1.2.-9223372036854775809",
		strings.Repeat("1", 10000) + ".2.3",
	} {
		if c, err := ParseCursor(s); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("ParseCursor(%q) = %+v, %v; want ErrInvalidQuery", s, c, err)
		}
	}
}

// FuzzParseCursor reads the ?after= and Last-Event-ID tokens API clients send
// (cursor.go: ParseCursor): an arbitrary string is refused with
// ErrInvalidQuery or parses to a cursor whose String is that very string; and
// every cursor's String parses back to it.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"1.2.3", "0.0.0", "1.2", "01.2.3", "1.2.-0", "1.2.-5", "+1.2.3",
		"18446744073709551615.4294967295.-9223372036854775808", "18446744073709551616.0.0", "١.٢.٣"} {
		f.Add(s, uint64(0), uint32(0), int64(0))
	}
	f.Add("", uint64(1<<64-1), uint32(1<<32-1), int64(-1<<63))
	f.Fuzz(func(t *testing.T, s string, idx uint64, seq uint32, tm int64) {
		c, err := ParseCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidQuery) {
				t.Fatalf("ParseCursor(%q): %v, want ErrInvalidQuery", s, err)
			}
		} else if c.String() != s {
			t.Fatalf("ParseCursor(%q) = %+v, which renders as %q", s, c, c.String())
		}
		want := Cursor{Index: fsm.RaftIndex(idx), Seq: seq, Time: tm}
		if got, err := ParseCursor(want.String()); err != nil || got != want {
			t.Fatalf("ParseCursor(%q) = %+v, %v; want %+v", want.String(), got, err, want)
		}
	})
}
