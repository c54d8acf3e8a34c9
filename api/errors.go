package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/batonhq/baton/fsm"
)

// API error codes, in addition to the state machine's fsm.Code values.
const (
	// CodeBadRequest: the request is malformed (bad JSON, bad query parameter).
	CodeBadRequest = "bad_request"
	// CodeBodyTooLarge: the request body exceeds the server's bound.
	CodeBodyTooLarge = "body_too_large"
	// CodeRequestTimeout: the request body did not arrive within the
	// server's body read timeout.
	CodeRequestTimeout = "request_timeout"
	// CodeUnauthorized: no or unknown bearer token.
	CodeUnauthorized = "unauthorized"
	// CodeForbidden: the token's role may not do this, or a worker's token
	// was used for another worker.
	CodeForbidden = "forbidden"
	// CodeNotFound: no such path or object.
	CodeNotFound = "not_found"
	// CodeMethodNotAllowed: the path exists but not with this method.
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeNoLeader: the cluster has no leader right now; retry later.
	CodeNoLeader = "no_leader"
	// CodeNotLeader: this node is not the leader and did not forward.
	CodeNotLeader = "not_leader"
	// CodeUnknownOutcome: the write may or may not have been applied; retry
	// with the same request id.
	CodeUnknownOutcome = "unknown_outcome"
	// CodeUnknownSession: a heartbeat for a session the leader does not hold
	// (expired, or another incarnation): the worker must register again.
	CodeUnknownSession = "unknown_session"
	// CodeNotReady: the node is still catching up.
	CodeNotReady = "not_ready"
	// CodeUnavailable: the node is shutting down or cannot serve.
	CodeUnavailable = "unavailable"
	// CodeTimeout: the request's deadline passed.
	CodeTimeout = "timeout"
	// CodeInternal: a bug or an unexpected failure.
	CodeInternal = "internal"
)

// statuses maps every code to its HTTP status. A table test checks that every
// fsm code is present.
var statuses = map[string]int{
	CodeBadRequest:       http.StatusBadRequest,
	CodeBodyTooLarge:     http.StatusRequestEntityTooLarge,
	CodeRequestTimeout:   http.StatusRequestTimeout,
	CodeUnauthorized:     http.StatusUnauthorized,
	CodeForbidden:        http.StatusForbidden,
	CodeNotFound:         http.StatusNotFound,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeNoLeader:         http.StatusServiceUnavailable,
	CodeNotLeader:        http.StatusServiceUnavailable,
	CodeUnknownOutcome:   http.StatusServiceUnavailable,
	CodeUnknownSession:   http.StatusNotFound,
	CodeNotReady:         http.StatusServiceUnavailable,
	CodeUnavailable:      http.StatusServiceUnavailable,
	CodeTimeout:          http.StatusGatewayTimeout,
	CodeInternal:         http.StatusInternalServerError,

	string(fsm.CodeInvalidArgument):   http.StatusBadRequest,
	string(fsm.CodeLimitExceeded):     http.StatusBadRequest,
	string(fsm.CodeRequestIDReused):   http.StatusConflict,
	string(fsm.CodeUnknownWorker):     http.StatusNotFound,
	string(fsm.CodeWorkerExists):      http.StatusConflict,
	string(fsm.CodeWorkerNotActive):   http.StatusConflict,
	string(fsm.CodeWorkerCordoned):    http.StatusConflict,
	string(fsm.CodeStaleIncarnation):  http.StatusConflict,
	string(fsm.CodeUnknownPartition):  http.StatusNotFound,
	string(fsm.CodePartitionExists):   http.StatusConflict,
	string(fsm.CodeSubjectOverlap):    http.StatusConflict,
	string(fsm.CodeUnknownHandoff):    http.StatusNotFound,
	string(fsm.CodeHandoffInProgress): http.StatusConflict,
	string(fsm.CodeWrongPhase):        http.StatusConflict,
	string(fsm.CodeNotOwner):          http.StatusConflict,
	string(fsm.CodeStaleEpoch):        http.StatusConflict,
	string(fsm.CodeSeqRegressed):      http.StatusConflict,
	string(fsm.CodeSameWorker):        http.StatusBadRequest,
	string(fsm.CodeNotForceable):      http.StatusConflict,
	string(fsm.CodeUnknownNode):       http.StatusNotFound,
	string(fsm.CodeUnknownCommand):    http.StatusBadRequest,
}

// StatusOf returns the HTTP status for an error code (500 for an unknown one).
func StatusOf(code string) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Codes lists every code the API can return.
func Codes() []string {
	out := make([]string, 0, len(statuses))
	for c := range statuses {
		out = append(out, c)
	}
	return out
}

// ErrUnknownSession is the error contract between the API server and the
// worker-session table it asks to renew a heartbeat (server.Sessions, which
// the controller implements): the table returns an error that wraps it when
// the leader holds no session for that worker incarnation (it expired, or
// another incarnation registered since). The server answers 404
// CodeUnknownSession, with the wrapping error's text as the message, and the
// worker registers again. Error.Is compares codes, so errors.Is(err,
// ErrUnknownSession) holds in the server and for the error a client decodes.
// Never modify it.
var ErrUnknownSession = &Error{Code: CodeUnknownSession, Status: http.StatusNotFound}

// Error is the API's error, as sent on the wire and as returned by the client.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Status  int    `json:"status,omitempty"`
}

// ErrorBody is the JSON envelope of an error response.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Errorf builds an Error with the status of its code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Status: StatusOf(code)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "api: " + e.Code
	}
	return "api: " + e.Code + ": " + e.Message
}

// Is compares codes with another *Error or an *fsm.RejectError.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	var r *fsm.RejectError
	if errors.As(target, &r) {
		return string(r.Code) == e.Code
	}
	return false
}

// Reject returns the error as an *fsm.RejectError if its code is a state
// machine code, and nil otherwise.
func (e *Error) Reject() *fsm.RejectError {
	for _, c := range fsm.Codes() {
		if string(c) == e.Code {
			return &fsm.RejectError{Code: c, Msg: e.Message}
		}
	}
	return nil
}

// FromReject converts a state machine rejection to an API error.
func FromReject(r *fsm.RejectError) *Error {
	return &Error{Code: string(r.Code), Message: r.Msg, Status: StatusOf(string(r.Code))}
}
