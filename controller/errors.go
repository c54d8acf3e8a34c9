package controller

import (
	"errors"
	"fmt"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("controller: closed")

// ErrUnknownSession is returned (wrapped in *SessionError) by Heartbeat when
// the leader holds no session for that worker incarnation.
var ErrUnknownSession = errors.New("controller: unknown session")

// SessionError says which session is unknown. It wraps both ErrUnknownSession
// and api.ErrUnknownSession, the API server's contract for "register again".
type SessionError struct {
	Worker      fsm.WorkerID
	Incarnation fsm.Incarnation
}

func (e *SessionError) Error() string {
	return fmt.Sprintf("%v: worker %s incarnation %d; register again", ErrUnknownSession, e.Worker, e.Incarnation)
}

// Unwrap makes errors.Is(err, ErrUnknownSession) and errors.Is(err,
// api.ErrUnknownSession) hold.
func (e *SessionError) Unwrap() []error { return []error{ErrUnknownSession, api.ErrUnknownSession} }
