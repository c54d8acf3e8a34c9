package natstest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// readyTimeout bounds how long Start and Restart wait for the listener;
	// generous because -race on two cores makes JetStream recovery slow.
	readyTimeout = 20 * time.Second

	// apiTimeout bounds every JetStream API call the helpers make, so a
	// wedged server fails the test instead of hanging until the test binary
	// is killed.
	apiTimeout = 10 * time.Second

	// reconnectWait is short because Restart brings the server back on the
	// same port within milliseconds; the nats.go default of 2s would make
	// every restart test wait for nothing.
	reconnectWait = 25 * time.Millisecond
)

// Option configures the server started by Start.
type Option func(*config)

type config struct {
	logs  bool
	debug bool
	trace bool
}

// WithLogs routes the server's notice, warning and error logs to tb.Log.
// Logs are off by default because the server is chatty and most tests only
// need them when they fail.
func WithLogs() Option {
	return func(c *config) { c.logs = true }
}

// WithDebugLogs routes debug and trace logs to tb.Log as well; implies
// WithLogs.
func WithDebugLogs() Option {
	return func(c *config) { c.logs, c.debug, c.trace = true, true, true }
}

// Server is an embedded nats-server with JetStream, owned by one test.
// Its methods are safe for concurrent use.
type Server struct {
	tb  testing.TB
	cfg config
	log *tbLogger

	mu   sync.Mutex
	opts *server.Options // template, Port pinned after the first start
	ns   *server.Server
}

// Start runs an embedded nats-server with JetStream on 127.0.0.1 and a random
// port, storing JetStream data under tb.TempDir(). The server is shut down,
// and its goroutines waited for, in a tb.Cleanup.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{tb: tb}
	for _, o := range opts {
		o(&s.cfg)
	}
	if s.cfg.logs {
		s.log = &tbLogger{tb: tb}
	}
	s.opts = &server.Options{
		ServerName: "natstest",
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   tb.TempDir(),
		// The test binary owns signals; a server that traps SIGINT would
		// swallow the developer's Ctrl-C.
		NoSigs: true,
		NoLog:  !s.cfg.logs,
		Debug:  s.cfg.debug,
		Trace:  s.cfg.trace,
		// No cluster, no HTTP monitor: nothing else to bind or leak.
		HTTPPort: 0,
	}
	// Registered before the first start so that a failed start is still
	// cleaned up, and so it runs after every cleanup registered later by
	// Connect (cleanups run last-in first-out).
	tb.Cleanup(s.shutdownAndSilence)

	ns := s.boot(tb)
	addr, ok := ns.Addr().(*net.TCPAddr)
	if !ok {
		tb.Fatalf("natstest: unexpected listener address %v", ns.Addr())
	}
	s.mu.Lock()
	// Restart must come back on the same port so that connected clients
	// reconnect to the URL they already have.
	s.opts.Port = addr.Port
	s.mu.Unlock()
	return s
}

// boot starts one server process from the options template.
func (s *Server) boot(tb testing.TB) *server.Server {
	tb.Helper()
	s.mu.Lock()
	opts := s.opts.Clone()
	s.mu.Unlock()

	ns, err := server.NewServer(opts)
	if err != nil {
		tb.Fatalf("natstest: new server: %v", err)
	}
	if s.log != nil {
		ns.SetLogger(s.log, s.cfg.debug, s.cfg.trace)
	}
	s.mu.Lock()
	s.ns = ns
	s.mu.Unlock()

	ns.Start()
	if !ns.ReadyForConnections(readyTimeout) {
		tb.Fatalf("natstest: server not ready for connections within %v", readyTimeout)
	}
	if !ns.JetStreamEnabled() {
		tb.Fatalf("natstest: JetStream not enabled")
	}
	return ns
}

// URL returns the nats:// URL clients use; it does not change across Restart.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// Restart shuts the server down and starts it again on the same port and
// store directory, so JetStream streams, consumers and messages survive and
// clients from Connect reconnect on their own.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Shutdown()
	s.boot(tb)
}

// Shutdown stops the server and waits for its goroutines. It is idempotent
// and is also called at cleanup.
func (s *Server) Shutdown() {
	s.mu.Lock()
	ns := s.ns
	s.mu.Unlock()
	if ns == nil {
		return
	}
	ns.Shutdown()
	ns.WaitForShutdown()
}

// shutdownAndSilence stops the server and then the logger: testing panics
// when a goroutine logs after its test completed, and the server may still
// be logging while it shuts down.
func (s *Server) shutdownAndSilence() {
	s.Shutdown()
	if s.log != nil {
		s.log.close()
	}
}

// NATS returns the running embedded server, for tests that need server
// internals such as JetStream account info.
func (s *Server) NATS() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ns
}

// Connect opens a client connection and a JetStream context to url. The
// connection reconnects forever with a short wait so that it survives
// Server.Restart, and it is closed in a tb.Cleanup.
func Connect(tb testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(url,
		nats.Name(tb.Name()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.ReconnectJitter(0, 0),
		nats.Timeout(apiTimeout),
	)
	if err != nil {
		tb.Fatalf("natstest: connect %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(apiTimeout))
	if err != nil {
		tb.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

// WithJS starts a server, connects to it and runs fn; everything is torn
// down when tb ends.
func WithJS(tb testing.TB, fn func(nc *nats.Conn, js jetstream.JetStream)) {
	tb.Helper()
	s := Start(tb)
	nc, js := Connect(tb, s.URL())
	fn(nc, js)
}

// CreateStream creates a file-backed stream with the given retention and
// subjects and fails tb on error. File storage is used so that state
// survives Server.Restart; AllowDirect is on because Baton reads a
// partition's backlog with direct get, and nats.go only takes the direct
// path when the stream allows it.
func CreateStream(tb testing.TB, js jetstream.JetStream, name string, retention jetstream.RetentionPolicy, subjects ...string) jetstream.Stream {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Subjects:    subjects,
		Retention:   retention,
		Storage:     jetstream.FileStorage,
		AllowDirect: true,
	})
	if err != nil {
		tb.Fatalf("natstest: create stream %s (%v %v): %v", name, retention, subjects, err)
	}
	return st
}

// tbLogger adapts testing.TB to the server.Logger interface and drops lines
// once the test is over.
type tbLogger struct {
	tb     testing.TB
	prefix string // the node's name in a cluster
	mu     sync.Mutex
	closed bool
}

func (l *tbLogger) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}

func (l *tbLogger) logf(level, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.tb.Logf("nats-server %s%s %s", l.prefix, level, fmt.Sprintf(format, v...))
}

func (l *tbLogger) Noticef(format string, v ...any) { l.logf("[INF]", format, v...) }
func (l *tbLogger) Warnf(format string, v ...any)   { l.logf("[WRN]", format, v...) }
func (l *tbLogger) Fatalf(format string, v ...any)  { l.logf("[FTL]", format, v...) }
func (l *tbLogger) Errorf(format string, v ...any)  { l.logf("[ERR]", format, v...) }
func (l *tbLogger) Debugf(format string, v ...any)  { l.logf("[DBG]", format, v...) }
func (l *tbLogger) Tracef(format string, v ...any)  { l.logf("[TRC]", format, v...) }
