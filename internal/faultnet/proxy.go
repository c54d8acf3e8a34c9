package faultnet

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy is a loopback TCP proxy to one address whose link a test can cut and
// heal, to cut a process off from one service while it keeps every other
// connection (a worker from the claim store, not from NATS). Point the
// process at Addr instead of the target.
//
// A cut behaves as a firewall that starts dropping packets: every connection
// goes silent (its target side is closed; what the client sends is read and
// dropped, nothing comes back), and connections made while cut are accepted
// and held silent too, so the client's calls hang until their own time-outs
// rather than failing fast. Heal closes the silent connections (a client
// would have given up on them) and forwards new ones again.
//
// CutFrom does the same to the connections of one client process only
// (Linux: the owner is found through /proc), so that a test can cut one
// process off from every peer even where all of them reach each other
// through the same proxies: raft nodes, each behind its own proxy.
type Proxy struct {
	ln net.Listener
	wg sync.WaitGroup // the accept loop and every connection's copiers

	// mu guards the fields below, shared by the accept loop, the copiers
	// and the test's calls.
	mu      sync.Mutex
	target  string
	cut     bool
	cutFrom map[int]bool // client processes cut off by CutFrom
	closed  bool
	conns   map[*proxyConn]struct{}
}

// proxyConn is one accepted connection and, unless it is silent, its
// connection to the target.
type proxyConn struct {
	client net.Conn
	server net.Conn // nil once silent
	// owner is the client process found to own the connection when it
	// was silenced for CutFrom (0: silenced by Cut).
	owner int
}

// dialTimeout bounds the proxy's connection to its target.
const dialTimeout = 5 * time.Second

// NewProxy starts a proxy listening on a free port of 127.0.0.1 and
// forwarding to target (host:port; empty: set later with SetTarget, and
// connections made before are closed). Close stops it.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultnet: proxy listen: %w", err)
	}
	p := &Proxy{target: target, ln: ln, cutFrom: make(map[int]bool), conns: make(map[*proxyConn]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetTarget sets where new connections are forwarded: for a service that
// must be told the proxy's address before it has an address of its own
// (a raft node advertising the proxy, listening on a free port).
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
}

// CutFrom silences every connection whose client is process pid, and every
// one it makes, until HealFrom(pid); other clients' connections go on.
func (p *Proxy) CutFrom(pid int) {
	p.mu.Lock()
	p.cutFrom[pid] = true
	var open []*proxyConn
	for c := range p.conns {
		if c.server != nil {
			open = append(open, c)
		}
	}
	p.mu.Unlock()
	// Reading /proc takes a while: not under the lock. A connection
	// accepted meanwhile checks cutFrom itself.
	var mine []*proxyConn
	for _, c := range open {
		if ownedBy(c.client, pid) {
			mine = append(mine, c)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range mine {
		if _, ok := p.conns[c]; ok {
			c.silence()
			c.owner = pid
		}
	}
}

// HealFrom ends CutFrom(pid): it closes pid's silenced connections and
// forwards its new ones again.
func (p *Proxy) HealFrom(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.cutFrom, pid)
	for c := range p.conns {
		if c.server == nil && c.owner == pid && !p.cut {
			c.client.Close()
			delete(p.conns, c)
		}
	}
}

// Cut silences every connection and every one made until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.silence()
	}
}

// Heal closes the connections silenced by the cut and forwards new ones
// again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	for c := range p.conns {
		if c.server == nil && !p.cutFrom[c.owner] {
			c.client.Close()
			delete(p.conns, c)
		}
	}
}

// Silent returns how many connections the cut holds silent now: those open
// at the cut and those accepted since (a test waits for a connection it made
// to be held before it heals).
func (p *Proxy) Silent() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.conns {
		if c.server == nil {
			n++
		}
	}
	return n
}

// Close stops accepting, closes every connection and waits for the proxy's
// goroutines to end. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.ln.Close()
	for c := range p.conns {
		c.client.Close()
		if c.server != nil {
			c.server.Close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

// serve forwards one connection, or holds it silent while the proxy is cut.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	c := &proxyConn{client: client}
	p.mu.Lock()
	cut, closed, target := p.cut, p.closed, p.target
	pids := make([]int, 0, len(p.cutFrom))
	for pid := range p.cutFrom {
		pids = append(pids, pid)
	}
	p.mu.Unlock()
	for _, pid := range pids {
		if !cut && ownedBy(client, pid) {
			cut, c.owner = true, pid
		}
	}
	if !cut && !closed {
		if target == "" {
			client.Close()
			return
		}
		server, err := net.DialTimeout("tcp", target, dialTimeout)
		if err != nil {
			client.Close()
			return
		}
		c.server = server
	}
	// Registered only now, after the dial: the proxy may have been cut or
	// closed meanwhile, and then the connection is silenced or closed as
	// the others were.
	p.mu.Lock()
	switch {
	case p.closed:
		c.close()
		p.mu.Unlock()
		return
	case p.cut, c.owner != 0 && p.cutFrom[c.owner]:
		c.silence()
	case c.owner != 0:
		// Healed while this connection was being checked: it was not
		// forwarded, so close it as HealFrom closes the others.
		c.close()
		p.mu.Unlock()
		return
	}
	p.conns[c] = struct{}{}
	server := c.server
	p.mu.Unlock()

	if server != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			// Target to client. It ends when the target's side is closed:
			// by the target, by a cut (the client then stays open,
			// silent), or by Close.
			_, _ = io.Copy(client, server)
			p.mu.Lock()
			if c.server != nil {
				p.drop(c)
			}
			p.mu.Unlock()
		}()
	}
	// Client to target, or to nowhere once silent.
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			p.mu.Lock()
			server := c.server
			p.mu.Unlock()
			if server != nil {
				if _, werr := server.Write(buf[:n]); werr != nil && !c.isSilent(p) {
					err = werr
				}
			}
		}
		if err != nil {
			p.mu.Lock()
			p.drop(c)
			p.mu.Unlock()
			return
		}
	}
}

// isSilent reports whether c was silenced (a write to its target failing
// because of the cut is not the connection's end).
func (c *proxyConn) isSilent(p *Proxy) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return c.server == nil
}

// silence closes c's target side; its client stays open. Called with p.mu
// held.
func (c *proxyConn) silence() {
	if c.server != nil {
		c.server.Close()
		c.server = nil
	}
}

// close closes both sides. Called with p.mu held.
func (c *proxyConn) close() {
	c.client.Close()
	if c.server != nil {
		c.server.Close()
	}
}

// drop closes c and forgets it. Called with p.mu held.
func (p *Proxy) drop(c *proxyConn) {
	c.close()
	c.server = nil
	delete(p.conns, c)
}
