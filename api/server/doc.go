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
// # Usage sketch
//
//	srv, err := server.New(node, server.Config{Tokens: tokens, Sessions: ctrl})
//	...
//	httpSrv := &http.Server{Handler: srv}
//	go httpSrv.Serve(ln)
//	...
//	srv.Close() // ends blocking queries and audit follows
package server
