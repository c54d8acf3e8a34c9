package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Terminal safety. Every string that comes from the server (ids, labels,
// reasons, causes, actors, request ids, addresses, error messages) may hold
// bytes that a terminal obeys: ESC sequences that recolour, move the cursor,
// retitle the window or worse, and C1 controls that some terminals read as ESC.
// What baton prints for people goes through termSafe; what it prints as JSON
// goes through writeJSON.

// termSafe returns s as it is when every rune is printable, and otherwise
// s quoted with strconv.Quote: control characters (C0, DEL, C1, ESC), other
// non-printing runes (bidi overrides, line separators) and invalid UTF-8 then
// show as escapes such as \x1b, and the quotes tell the reader so.
func termSafe(s string) string {
	if printableText(s) {
		return s
	}
	return strconv.Quote(s)
}

// termSafeLines is termSafe for text of several lines: each line is made safe
// on its own, and the newlines between them are kept.
func termSafeLines(s string) string {
	if printableText(strings.ReplaceAll(s, "\n", "")) {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = termSafe(l)
	}
	return strings.Join(lines, "\n")
}

// printableText reports whether s is valid UTF-8 of printable runes (the
// space included, tabs and newlines not).
func printableText(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || !strconv.IsPrint(r) {
			return false
		}
		i += n
	}
	return true
}

// checkText refuses a value given on the command line that the audit log
// would carry to other operators' terminals: control characters or invalid
// UTF-8, or more than max bytes.
func checkText(flag, s string, max int) error {
	if len(s) > max {
		return usageErrorf("%s: %d bytes, at most %d", flag, len(s), max)
	}
	if !printableText(s) {
		return usageErrorf("%s %s: control characters or invalid UTF-8", flag, strconv.Quote(s))
	}
	return nil
}

// writeJSON writes v as JSON (indented if indent), with every DEL and C1
// control escaped: encoding/json escapes C0 (ESC included) but writes DEL and
// U+0080 to U+009F as they are, and some terminals obey C1 (U+009B is CSI).
// Both only occur inside JSON strings, so escaping them keeps the JSON valid
// and equal.
func writeJSON(w io.Writer, v any, indent bool) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if indent {
		enc.SetIndent("", "  ")
	}
	enc.SetEscapeHTML(false) // subjects hold ">"
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err := w.Write(escapeC1(buf.Bytes()))
	return err
}

// escapeC1 replaces DEL and the C1 controls in valid JSON text with \u
// escapes. Anything else, invalid UTF-8 included, is copied as it is
// (encoding/json never writes invalid UTF-8; json.Indent refuses control
// bytes inside strings but lets invalid UTF-8 through, so it is escaped as
// U+FFFD here).
func escapeC1(b []byte) []byte {
	// C1 controls are encoded as 0xc2 0x80 to 0xc2 0x9f.
	if bytes.IndexByte(b, 0x7f) < 0 && bytes.IndexByte(b, 0xc2) < 0 && utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case r == 0x7f || r >= 0x80 && r < 0xa0:
			out = fmt.Appendf(out, `\u%04x`, r)
		case r == utf8.RuneError && n == 1:
			out = append(out, `\ufffd`...)
		default:
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return out
}
