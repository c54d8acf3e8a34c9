package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/controller"
	"github.com/batonhq/baton/raftnode"
)

// nodeConfig is one claim-store node as `baton server` and the demo run it:
// the configs of its three components and how its HTTP API listens.
type nodeConfig struct {
	Raft       raftnode.Config
	Controller controller.Config
	API        server.Config
	// HTTPAddr is the API's listen address ("host:port"; port 0 picks one).
	HTTPAddr string
	// HTTPAdvertise is the API base URL other nodes and clients use
	// (default: http(s)://<bound listen address>).
	HTTPAdvertise string
	// HTTPTLS, if set, serves the API over HTTPS; PeerTLS is the client side
	// used to reach other nodes' APIs (forwarding, joining).
	HTTPTLS *tls.Config
	PeerTLS *tls.Config
	// Join lists API base URLs of existing nodes to join through (empty: do
	// not join). JoinToken is the operator token for that request.
	Join      []string
	JoinToken string
	// Registry receives every component's metrics and serves /metrics.
	Registry *prometheus.Registry
	Logger   *slog.Logger
}

// node is a running claim-store node.
type node struct {
	raft     *raftnode.Node
	ctrl     *controller.Controller
	api      *server.Server
	http     *http.Server
	metrics  *controller.HandoffMetrics
	url      string
	httpAddr string
	log      *slog.Logger
	// stopJoin ends the join loop; joined is closed when it has ended.
	stopJoin context.CancelFunc
	joined   chan struct{}
	serveErr chan error
}

// startNode listens on the API address, starts raft with the controller's
// handoff metrics fed from applied events, the controller, and the API server,
// and, if cfg.Join is set, joins the cluster in the background.
func startNode(cfg nodeConfig) (_ *node, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on --http-addr %s: %w", cfg.HTTPAddr, err)
	}
	n := &node{log: log, httpAddr: ln.Addr().String(), joined: make(chan struct{}), serveErr: make(chan error, 1)}
	scheme := "http"
	if cfg.HTTPTLS != nil {
		ln = tls.NewListener(ln, cfg.HTTPTLS)
		scheme = "https"
	}
	defer func() {
		if err != nil {
			ln.Close()
			n.closeParts(context.Background())
		}
	}()
	n.url = cfg.HTTPAdvertise
	if n.url == "" {
		host, _, _ := net.SplitHostPort(n.httpAddr)
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return nil, fmt.Errorf("--http-addr %s listens on every interface: set --http-advertise to the URL other nodes and clients should use", cfg.HTTPAddr)
		}
		n.url = scheme + "://" + n.httpAddr
	}
	var reg prometheus.Registerer
	if cfg.Registry != nil {
		reg = cfg.Registry
	}
	n.metrics = controller.NewHandoffMetrics(reg)

	rc := cfg.Raft
	rc.APIAddr = n.url
	rc.OnEvents = n.metrics.Observe
	rc.Registerer = reg
	rc.Logger = log
	if n.raft, err = raftnode.New(rc); err != nil {
		return nil, err
	}
	cc := cfg.Controller
	cc.Registerer = reg
	cc.Logger = log.With("component", "controller")
	if n.ctrl, err = controller.New(n.raft, cc); err != nil {
		return nil, err
	}
	ac := cfg.API
	ac.Sessions, ac.Planner = n.ctrl, n.ctrl
	ac.SessionTTL, ac.HeartbeatInterval = cc.SessionTTL, cc.HeartbeatInterval
	if cfg.Registry != nil {
		ac.Gatherer = cfg.Registry
	}
	ac.Logger = log.With("component", "api")
	if cfg.PeerTLS != nil {
		ac.Forward = httpClient(cfg.PeerTLS)
	}
	if n.api, err = server.New(n.raft, ac); err != nil {
		return nil, err
	}
	n.http = &http.Server{
		Handler: n.api,
		// A client must send its request head within ReadHeaderTimeout.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// No ReadTimeout: it would bound the whole request, handler included,
		// and blocking queries and audit follows are long GETs (bounded by
		// the API's MaxWait instead). The body, which only other requests
		// have, gets its own deadline from the API server
		// (server.Config.BodyTimeout, set per request once the head is in);
		// and any answer given before a body was read closes the
		// connection rather than wait for it. No WriteTimeout either, for
		// the same long responses.
	}
	go func() { n.serveErr <- n.http.Serve(ln) }()

	joinCtx, stop := context.WithCancel(context.Background())
	n.stopJoin = stop
	if len(cfg.Join) == 0 {
		close(n.joined)
	} else {
		req := api.JoinRequest{ID: rc.NodeID, RaftAddr: n.raft.RaftAddr(), APIAddr: n.url}
		go func() {
			defer close(n.joined)
			joinLoop(joinCtx, log, cfg.Join, cfg.JoinToken, cfg.PeerTLS, req)
		}()
	}
	return n, nil
}

// joinLoop asks the cluster at addrs to add this node, with jittered
// exponential back-off, until it succeeds or ctx ends. Joining is idempotent,
// so a node restarted with --join simply joins again.
func joinLoop(ctx context.Context, log *slog.Logger, addrs []string, token string, peerTLS *tls.Config, req api.JoinRequest) {
	opts := []client.Option{client.WithRetries(len(addrs)), client.WithTimeout(10 * time.Second)}
	if peerTLS != nil {
		opts = append(opts, client.WithHTTPClient(httpClient(peerTLS)))
	}
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	c, err := client.New(addrs, opts...)
	if err != nil {
		log.Error("cannot join: bad --join address", "join", strings.Join(addrs, ","), "err", err)
		return
	}
	defer c.Close()
	wait := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := c.Join(ctx, req)
		if err == nil {
			log.Info("joined the cluster", "via", strings.Join(addrs, ","), "attempts", attempt)
			return
		}
		if ctx.Err() != nil {
			return
		}
		lvl := slog.LevelInfo
		if attempt%10 == 0 || errors.Is(err, client.ErrUnauthorized) || errors.Is(err, client.ErrForbidden) {
			lvl = slog.LevelWarn
		}
		log.Log(ctx, lvl, "join failed; retrying", "via", strings.Join(addrs, ","), "attempt", attempt, "err", err)
		d := wait/2 + rand.N(wait/2+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// shutdown stops the node gracefully: the join loop, the API (ending blocking
// queries and follows, then the HTTP server), the controller, and raft (a
// leader hands leadership over first). ctx bounds it.
func (n *node) shutdown(ctx context.Context) error {
	n.stopJoin()
	<-n.joined
	var errs []error
	if n.api != nil {
		n.api.Close()
	}
	if n.http != nil {
		if err := n.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			n.http.Close()
		}
	}
	errs = append(errs, n.closeParts(ctx))
	return errors.Join(errs...)
}

// closeParts stops the controller (bounded by ctx) and then raft, whichever
// are running.
func (n *node) closeParts(ctx context.Context) error {
	var errs []error
	if n.ctrl != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.ctrl.Close()
		}()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("controller close: %w", ctx.Err()))
		}
	}
	if n.raft != nil {
		if err := n.raft.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
	}
	if n.metrics != nil {
		n.metrics.Unregister()
	}
	return errors.Join(errs...)
}
