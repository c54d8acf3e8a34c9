// Package api defines Baton's HTTP/JSON API, version 1: the paths, the request and
// response bodies, the event wire format and the error codes with their HTTP
// statuses. The server lives in api/server and the Go client in api/client;
// this package is what they share, and it depends only on fsm so that workers
// embedding the client do not pull in raft.
//
// Every error is JSON {"error": {"code": "...", "message": "...", "status": N}}
// with a stable code: the state machine's rejection codes (fsm.Codes) and the
// API's own (CodeBadRequest, CodeNoLeader, ...). Error.Is compares codes, so
// errors.Is(err, fsm.ErrStaleEpoch) holds for an error decoded by the client.
package api
