package controller

import (
	"errors"
	"fmt"

	"github.com/batonhq/baton/fsm"
)

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("controller: closed")

// ErrUnknownSession is returned (wrapped in *SessionError) by Heartbeat when
// the leader holds no session for that worker incarnation.
var ErrUnknownSession = errors.New("controller: unknown session")

// SessionError says which session is unknown. Its UnknownSession method lets
// the API server recognise it without importing this package.
type SessionError struct {
	Worker      fsm.WorkerID
	Incarnation fsm.Incarnation
}

func (e *SessionError) Error() string {
	return fmt.Sprintf("%v: worker %s incarnation %d; register again", ErrUnknownSession, e.Worker, e.Incarnation)
}

// Unwrap makes errors.Is(err, ErrUnknownSession) hold.
func (e *SessionError) Unwrap() error { return ErrUnknownSession }

// UnknownSession reports true: the worker must register again.
func (e *SessionError) UnknownSession() bool { return true }
