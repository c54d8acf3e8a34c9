// Package natstest owns Baton's test-only embedded NATS server and the
// executable record of the JetStream behaviour Baton's partition handover is
// built on.
//
// The helpers (Start, Connect, WithJS, CreateStream) give every test package a
// real nats-server with JetStream on a random loopback port and a private
// store directory, torn down through testing.TB cleanups, so tests never talk
// to mocks or to a shared server. StartCluster does the same for a JetStream
// cluster of n servers in the test process, routed through fault proxies, with
// replicated streams (Cluster.CreateStream), leader lookups and moves, and
// node faults: a clean Stop, a Kill that no step-down survives, Isolate/Heal,
// and Restart with a wait for catch-up.
//
// The TestFact_* tests in this package are specifications of server facts the
// handover design relies on (filter updates, ack-pending behaviour, retention
// policies, direct get, consumer reset; on a cluster, leader changes, direct
// gets from replicas and confirmed acks). They are meant to fail loudly when a
// nats-server or nats.go upgrade changes one of those facts; the prose
// version lives in docs/jetstream-facts.md.
package natstest
