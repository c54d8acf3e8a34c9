package consumer

import (
	"time"

	"github.com/batonhq/baton/internal/retry"
)

// The bounds of the applier's retry loops, in one place. Every bounded loop
// runs under retry.Do, with the classification (a terminal error ends it at
// once) and the jittered back-off that api/client uses too; only the bounds
// differ. Reports to the claim store are not retried here: the core sends
// them again after a back-off of its own, so that no call holds anything up.

// settlePolicy bounds a confirmed ack or a delete of a processed message:
// a lost one would leave the message stored behind the next owner's resume
// point, so it is worth a few attempts.
func settlePolicy() retry.Policy {
	return retry.Policy{Initial: 20 * time.Millisecond, Max: time.Second, Attempts: 5}
}

// ackAttemptTimeout bounds one attempt of a confirmed ack. A consumer leader
// answers in milliseconds; one that does not answer within this is an
// unknown outcome (fact 24) and the ack is sent again.
const ackAttemptTimeout = time.Second

// readPolicy bounds one catch-up read of a subject; the core reads again
// after a back-off when it gives up.
func readPolicy() retry.Policy {
	return retry.Policy{Initial: 20 * time.Millisecond, Max: time.Second, Attempts: 5}
}

// cleanPolicy bounds the cleaning of a gone incarnation's consumer
// (read-modify-write, verified); the core or the janitor tries again later.
func cleanPolicy() retry.Policy {
	return retry.Policy{Initial: 20 * time.Millisecond, Max: time.Second, Attempts: 8}
}
