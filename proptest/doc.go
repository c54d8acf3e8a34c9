// Package proptest holds Baton's property tests: rapid state-machine tests that
// drive the fsm with random command sequences against an independent reference
// model, snapshot and audit-replay equivalence checks, and (as the cluster grows)
// invariant checks over the audit logs of live clusters.
//
// `make test` runs a few hundred rapid checks per property; `make proptest-long`
// runs 20,000 or more (-rapid.checks).
package proptest
