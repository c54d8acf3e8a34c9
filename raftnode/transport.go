package raftnode

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is raft's network: plain TCP, or TLS with client certificates
// required on both ends when a tls.Config is given. Every accepted connection
// reads through a msgGuard, which closes it when a request breaks lim.
type streamLayer struct {
	net.Listener
	advertise net.Addr
	tls       *tls.Config
	lim       msgLimits
	log       *slog.Logger

	// mu guards conns, the accepted connections still open: Close closes them
	// too, so that a stopped node leaves no reader blocked on a peer's socket.
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Accept implements net.Listener, tracking the connection.
func (s *streamLayer) Accept() (net.Conn, error) {
	c, err := s.Listener.Accept()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	if s.conns == nil {
		s.conns = make(map[net.Conn]struct{})
	}
	tc := &trackedConn{Conn: c, s: s, guard: newMsgGuard(s.lim)}
	s.conns[tc] = struct{}{}
	return tc, nil
}

// Close stops accepting and closes every accepted connection.
func (s *streamLayer) Close() error {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	err := s.Listener.Close()
	for c := range conns {
		c.Close()
	}
	return err
}

// trackedConn is an accepted connection. Only hashicorp's handler goroutine
// reads it, so guard and err need no lock.
type trackedConn struct {
	net.Conn
	s     *streamLayer
	once  sync.Once
	guard *msgGuard
	err   error // set once a request broke the limits; every later Read returns it
}

// Read passes bytes to the transport's decoder only once the guard has
// accepted them: the bytes that break a limit (a header declaring 4 GiB) never
// reach it, and the connection is closed.
func (c *trackedConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if gerr := c.guard.scan(p[:n]); gerr != nil {
			c.err = gerr
			c.s.log.Warn("closing a raft connection: request over the transport's limits",
				"peer", c.RemoteAddr().String(), "err", gerr)
			c.Close()
			return 0, gerr
		}
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// listen binds addr and returns a stream layer that advertises advertise (or
// the bound address when empty) and bounds incoming requests by lim.
func listen(addr, advertise string, tlsCfg *tls.Config, lim msgLimits, log *slog.Logger) (*streamLayer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raftnode: listen %s: %w", addr, err)
	}
	s := &streamLayer{Listener: ln, advertise: ln.Addr(), lim: lim, log: log}
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("raftnode: advertise address %s: %w", advertise, err)
		}
		s.advertise = a
	} else if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		ln.Close()
		return nil, errors.New("raftnode: listening on an unspecified address needs an AdvertiseAddr")
	}
	if tlsCfg != nil {
		s.tls = tlsCfg.Clone()
		s.Listener = tls.NewListener(ln, s.tls)
	}
	return s, nil
}

// Addr is what raft advertises to its peers.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// Dial opens a connection to a peer, with TLS if configured.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if s.tls == nil {
		return d.Dial("tcp", string(address))
	}
	cfg := s.tls.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(string(address))
		if err == nil {
			cfg.ServerName = host
		}
	}
	return tls.DialWithDialer(d, "tcp", string(address), cfg)
}
