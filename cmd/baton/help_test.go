package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// TestHelp_PrintsUsageOnce: every command's and verb's --help (and -h, and
// 'baton help CMD') prints its usage exactly once, on stdout, and succeeds.
// Issue 9 saw every usage printed twice: the flag package calls Usage on
// -h as well as parse printing it.
func TestHelp_PrintsUsageOnce(t *testing.T) {
	var cmds [][]string
	for _, c := range commands() {
		cmds = append(cmds, []string{c.name, "--help"}, []string{c.name, "-h"}, []string{"help", c.name})
	}
	for _, v := range []string{"declare", "list", "get", "remove", "move"} {
		cmds = append(cmds, []string{"partitions", v, "--help"})
	}
	cmds = append(cmds, []string{"cluster", "join", "--help"}, []string{"cluster", "remove", "--help"},
		[]string{"token", "new-key", "--help"}, []string{"token", "issue", "--help"})
	for _, args := range cmds {
		name := strings.Join(args, " ")
		var stderr bytes.Buffer
		var err error
		out := captureStdout(t, func() { err = run(args, io.Discard, &stderr) })
		if err != nil {
			t.Errorf("baton %s: %v", name, err)
			continue
		}
		if n := strings.Count(out, "Usage:"); n != 1 {
			t.Errorf("baton %s printed its usage %d times:\n%s", name, n, out)
		}
		if stderr.Len() > 0 {
			t.Errorf("baton %s wrote to stderr: %s", name, stderr.String())
		}
	}
}

// captureStdout runs fn with os.Stdout sent to a pipe and returns what it
// wrote. The commands write their usage to os.Stdout itself.
func captureStdout(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		r.Close()
		done <- string(b)
	}()
	stdout := os.Stdout
	os.Stdout = w
	func() {
		defer func() { os.Stdout = stdout }()
		fn()
	}()
	w.Close()
	return <-done
}
