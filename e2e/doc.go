// Package e2e holds Baton's end-to-end tests: they build the baton binary once
// and run real processes — claim-store servers, workers, client verbs — against
// each other over loopback TCP, with an embedded nats-server in the test
// process. They kill processes with SIGKILL and stop them with SIGTERM, and
// check what only a whole deployment shows: identical audit logs on every node
// after a leader dies and comes back, and exactly-once delivery across real
// worker processes that leave gracefully or crash, or that pause (SIGSTOP) or
// are cut off from the claim store (worker_faults_test.go).
//
// The package has no code of its own besides its tests. Every process a test
// starts is killed at the test's cleanup; data lives in t.TempDir().
package e2e
