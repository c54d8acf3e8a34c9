package e2e

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseLogLine: whatever a process writes to its output, reading it as a
// log line never panics; and every line baton's JSON logger writes (any
// message, any attribute) is read back with its message and attribute, so
// waitLog cannot miss a line it waits for.
func FuzzParseLogLine(f *testing.F) {
	f.Add(`{"time":"2026-12-07T21:29:13Z","level":"INFO","msg":"registered","worker":"w3","incarnation":12}`, "registered", "worker", "w3")
	f.Add(`handled 127 messages (19/s)`, "stopped", "k", "v")
	f.Add(`{"msg":42}`, "", "", "")
	f.Add(`null`, "a\nb", "x\"y", "\x00")
	f.Add(`{"msg":"a"`, "lease renewed; unfenced", "fenced_for", "1.5s")
	f.Fuzz(func(t *testing.T, line, msg, key, value string) {
		if fields, _, ok := parseLogLine(line); ok && fields == nil {
			t.Fatalf("%q read as a log line without fields", line)
		}
		if key == "" || !utf8.ValidString(msg) || !utf8.ValidString(key) || !utf8.ValidString(value) {
			return // the logger rewrites invalid UTF-8; baton logs valid text
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info(msg, key, value)
		out := strings.TrimSuffix(buf.String(), "\n")
		fields, got, ok := parseLogLine(out)
		if !ok {
			t.Fatalf("a line the logger wrote is not read: %q", out)
		}
		if got != msg {
			t.Fatalf("message %q read back as %q from %q", msg, got, out)
		}
		if key != "time" && key != "level" && key != "msg" {
			if v, _ := fields[key].(string); v != value {
				t.Fatalf("attribute %q=%q read back as %q from %q", key, value, v, out)
			}
		}
	})
}
