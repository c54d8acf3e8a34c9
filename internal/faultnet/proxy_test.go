package faultnet_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/faultnet"
)

// echo is a TCP echo server that remembers what reached it.
type echo struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex // guards got and conns
	got    bytes.Buffer
	conns  []net.Conn
	closed chan struct{} // one value per connection that ended
}

func startEcho(t *testing.T) *echo {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{ln: ln, closed: make(chan struct{}, 16)}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.conns = append(e.conns, c)
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer func() { e.closed <- struct{}{} }()
				buf := make([]byte, 1024)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						e.mu.Lock()
						e.got.Write(buf[:n])
						e.mu.Unlock()
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		e.mu.Lock()
		for _, c := range e.conns {
			c.Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
	return e
}

func (e *echo) received() (string, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got.String(), len(e.conns)
}

// waitClosed waits until one of the echo server's connections ended.
func (e *echo) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-e.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the target's side of the connection was not closed")
	}
}

func newProxy(t *testing.T, target string) *faultnet.Proxy {
	t.Helper()
	p, err := faultnet.NewProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads the echo back.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read the echo of %q: %v", msg, err)
	}
	if string(buf) != msg {
		t.Fatalf("echo %q, want %q", buf, msg)
	}
}

// closedWithNothing requires that c is closed by the proxy without having
// received a byte.
func closedWithNothing(t *testing.T, c net.Conn, name string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: not closed by Heal", name)
	}
	if len(b) > 0 {
		t.Errorf("%s received %q through a cut proxy", name, b)
	}
}

func TestProxy_Forwards(t *testing.T) {
	e := startEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	c := dial(t, p.Addr())
	roundTrip(t, c, "hello")
	roundTrip(t, c, "again")
	if got, n := e.received(); got != "helloagain" || n != 1 {
		t.Errorf("target received %q over %d connections, want %q over 1", got, n, "helloagain")
	}
}

// TestProxy_CutSilencesThenHealCloses: a cut closes the target's side of an
// open connection and drops what its client sends; a connection made while
// cut is accepted and held without reaching the target; Heal closes both
// without either having received anything, and a new connection is
// forwarded again.
func TestProxy_CutSilencesThenHealCloses(t *testing.T) {
	e := startEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	before := dial(t, p.Addr())
	roundTrip(t, before, "hello")

	p.Cut()
	e.waitClosed(t)
	if _, err := before.Write([]byte("dropped")); err != nil {
		t.Fatalf("write on a silenced connection: %v (want it accepted and dropped)", err)
	}
	during := dial(t, p.Addr())
	if _, err := during.Write([]byte("held")); err != nil {
		t.Fatalf("write on a connection made while cut: %v", err)
	}
	// The kernel completes the handshake before the proxy accepts: wait
	// until the proxy holds the connection, or Heal would come first.
	deadline := time.Now().Add(10 * time.Second)
	for p.Silent() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the proxy holds %d silent connections, want 2", p.Silent())
		}
		time.Sleep(time.Millisecond)
	}

	p.Heal()
	closedWithNothing(t, before, "the connection open at the cut")
	closedWithNothing(t, during, "the connection made while cut")
	if got, n := e.received(); got != "hello" || n != 1 {
		t.Errorf("target received %q over %d connections, want only %q over the first", got, n, "hello")
	}

	after := dial(t, p.Addr())
	roundTrip(t, after, "healed")
	if got, n := e.received(); got != "hellohealed" || n != 2 {
		t.Errorf("target received %q over %d connections, want %q over 2", got, n, "hellohealed")
	}
}

// TestProxy_TargetDown: a connection the proxy cannot forward is closed.
func TestProxy_TargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()
	p := newProxy(t, target)
	closedWithNothing(t, dial(t, p.Addr()), "a connection to a closed port")
}

// TestProxy_Close: Close ends every connection, silent or not, and the
// listener; a second Close is harmless.
func TestProxy_Close(t *testing.T) {
	e := startEcho(t)
	p, err := faultnet.NewProxy(e.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	open := dial(t, p.Addr())
	roundTrip(t, open, "hello")
	p.Cut()
	silent := dial(t, p.Addr())
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	closedWithNothing(t, open, "an open connection")
	closedWithNothing(t, silent, "a silent connection")
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("the proxy still accepts after Close")
	}
}

// TestProxy_CutFromOneProcess: CutFrom silences only the connections of the
// process it names (this test's own, found through /proc): another pid's cut
// leaves them alone; a global Heal does not lift a process's cut; HealFrom
// closes them, and new ones are forwarded again.
func TestProxy_CutFromOneProcess(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	e := startEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	c := dial(t, p.Addr())
	roundTrip(t, c, "a")

	p.CutFrom(os.Getppid()) // the go command, or whoever ran the test
	roundTrip(t, c, "b")
	p.HealFrom(os.Getppid())

	p.CutFrom(os.Getpid())
	e.waitClosed(t)
	during := dial(t, p.Addr())
	deadline := time.Now().Add(10 * time.Second)
	for p.Silent() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the proxy holds %d silent connections, want 2", p.Silent())
		}
		time.Sleep(time.Millisecond)
	}
	p.Heal() // nothing was cut globally: the process's cut holds
	if n := p.Silent(); n != 2 {
		t.Fatalf("%d silent connections after a global Heal, want 2", n)
	}
	p.HealFrom(os.Getpid())
	closedWithNothing(t, c, "the connection open at the cut")
	closedWithNothing(t, during, "the connection made while cut")
	roundTrip(t, dial(t, p.Addr()), "c")
	if got, _ := e.received(); got != "abc" {
		t.Errorf("target received %q, want %q", got, "abc")
	}
}

// TestProxy_SetTarget: a proxy made before its target exists closes what
// comes before SetTarget, and forwards after.
func TestProxy_SetTarget(t *testing.T) {
	p := newProxy(t, "")
	closedWithNothing(t, dial(t, p.Addr()), "a connection before the target is set")
	e := startEcho(t)
	p.SetTarget(e.ln.Addr().String())
	roundTrip(t, dial(t, p.Addr()), "hello")
}
