package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// timeout bounds every wait in this package: generous, because the tests run
// under -race on two cores next to other packages' tests.
const timeout = 30 * time.Second

// proc is one baton process started by a test. Its output goes to a log file
// in the test's temp dir (shown when the test fails); JSON log lines are also
// matched against what the test waits for.
type proc struct {
	t    *testing.T
	name string
	args []string
	log  string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done closes

	mu    sync.Mutex // guards lines, waits and partial, written by exec's copy goroutine
	lines []map[string]any
	waits []*lineWait
}

type lineWait struct {
	msg string
	ch  chan map[string]any // buffer 1
}

// start runs the baton binary with args as a process named name, which is
// killed at test cleanup if it is still running.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, done: make(chan struct{})}
	dir := t.TempDir()
	if keep := os.Getenv("BATON_E2E_LOGS"); keep != "" {
		// Kept after the test, for reading a passing run's processes.
		dir = filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p.log = filepath.Join(dir, name+".log")
	p.launch()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.dumpLog()
		}
	})
	return p
}

func (p *proc) launch() {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(f, "=== %s %s\n", batonBin, strings.Join(p.args, " "))
	w := &lineWriter{file: f, onLine: p.onLine}
	cmd := exec.Command(batonBin, p.args...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		f.Close()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	done := p.done
	go func() {
		err := cmd.Wait()
		w.flush()
		f.Close()
		p.err = err
		close(done)
	}()
}

// onLine records a JSON log line and wakes a waiter for its message.
func (p *proc) onLine(line string) {
	m, msg, ok := parseLogLine(line)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, m)
	for i, w := range p.waits {
		if w.msg == msg {
			w.ch <- m
			p.waits = append(p.waits[:i], p.waits[i+1:]...)
			return
		}
	}
}

// waitLog returns the first JSON log line with message msg that the process
// logged since it was last (re)started, waiting for it if needed.
func (p *proc) waitLog(msg string) map[string]any {
	p.t.Helper()
	w := &lineWait{msg: msg, ch: make(chan map[string]any, 1)}
	p.mu.Lock()
	for _, m := range p.lines {
		if m["msg"] == msg {
			p.mu.Unlock()
			return m
		}
	}
	p.waits = append(p.waits, w)
	done := p.done
	p.mu.Unlock()
	select {
	case m := <-w.ch:
		return m
	case <-done:
		p.t.Fatalf("%s exited (%v) before logging %q", p.name, p.err, msg)
	case <-time.After(timeout):
		p.t.Fatalf("%s did not log %q within %s", p.name, msg, timeout)
	}
	return nil
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("signal %s: %v", p.name, err)
	}
}

// wait waits for the process to exit and returns Wait's error.
func (p *proc) wait() error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit within %s", p.name, timeout)
		return nil
	}
}

// stop sends SIGTERM and requires a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	if err := p.wait(); err != nil {
		p.t.Fatalf("%s exited with %v after SIGTERM", p.name, err)
	}
}

// crash kills the process with SIGKILL and waits for it.
func (p *proc) crash() {
	p.t.Helper()
	p.signal(syscall.SIGKILL)
	_ = p.wait()
}

// restart runs the process again with the same arguments.
func (p *proc) restart() {
	p.t.Helper()
	select {
	case <-p.done:
	default:
		p.t.Fatalf("restart %s: still running", p.name)
	}
	p.mu.Lock()
	p.lines, p.waits = nil, nil
	p.mu.Unlock()
	p.launch()
}

// kill ends the process if it still runs (cleanup).
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) dumpLog() {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return
	}
	const max = 16 << 10
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	p.t.Logf("--- log of %s (last %d bytes):\n%s", p.name, len(b), b)
}

// lineWriter splits a process's output into lines for onLine, and copies it
// to a file. exec's copying goroutine is its only writer.
type lineWriter struct {
	file    *os.File
	onLine  func(string)
	partial []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	if _, err := w.file.Write(b); err != nil {
		return 0, err
	}
	w.partial = append(w.partial, b...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.onLine(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	return len(b), nil
}

func (w *lineWriter) flush() {
	if len(w.partial) > 0 {
		w.onLine(string(w.partial))
		w.partial = nil
	}
}

// cli runs a client verb and returns its standard output; it fails the test
// if the command fails.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cliErr(args...)
	if err != nil {
		t.Fatalf("baton %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// cliErr runs a client verb and returns its combined output and error.
func cliErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, batonBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// eventually retries f until it returns nil, failing the test with f's last
// error after timeout.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 10 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 250*time.Millisecond)
	}
}

// parseLogLine reads one line a process logged with --log-format json: its
// fields and its message. Anything else (a plain line, a partial write) is
// not a log line.
func parseLogLine(line string) (fields map[string]any, msg string, ok bool) {
	if json.Unmarshal([]byte(line), &fields) != nil || fields == nil {
		return nil, "", false
	}
	msg, _ = fields["msg"].(string)
	return fields, msg, true
}
