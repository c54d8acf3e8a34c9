// Package server serves Baton's HTTP/JSON API (package api) from one claim-store
// node: worker sessions and reports, assignment watches as blocking queries,
// partitions and operator verbs, the audit log (query and Server-Sent Events),
// cluster membership and status, metrics and health.
//
// Writes go to the raft leader. A follower forwards them (and leader reads) to
// the leader's API, once; with no leader it answers 503 with Retry-After. Every
// error is JSON with a stable code (api.Error); bad input is refused before
// anything is proposed.
//
// Request bodies are decoded strictly (strict.go): exact keys, no unknown or
// duplicate ones, required fields present. Bodies are read under a deadline
// (Config.BodyTimeout) and after the checks that need no body (token, role,
// the worker a worker token is bound to, path ids), whose answers close the
// connection instead of waiting for a body (body.go). Worker tokens act for
// one worker only: static ones name it, derived ones (WorkerToken) carry it
// under an HMAC of Config.WorkerTokenKey (auth.go).
//
// # Usage sketch
//
//	srv, err := server.New(node, server.Config{Tokens: tokens, Sessions: ctrl})
//	...
//	httpSrv := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second} // no ReadTimeout: long GETs
//	go httpSrv.Serve(ln)
//	...
//	srv.Close() // ends blocking queries and audit follows
package server
