package client

import "time"

// WithFollowKeepAlive makes the client expect audit follows to send a
// keep-alive every d instead of api.FollowKeepAlive, so that a test of a node
// gone silent need not wait for the real interval.
func WithFollowKeepAlive(d time.Duration) Option {
	return optionFunc(func(o *options) error {
		o.keepAlive = d
		return nil
	})
}
