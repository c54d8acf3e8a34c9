// Package deploy holds what operators run next to a Baton cluster: the
// Grafana dashboard (grafana/baton.json) and the Prometheus alerting rules
// (prometheus/alerts.yml, with their promtool unit tests in
// prometheus/alerts_test.yml). It has no code; its tests check that every
// metric the dashboard and the rules name is one Baton registers (so that a
// renamed metric fails them), and run promtool over the rules and over the
// dashboard's queries. docs/operations.md says how to use them.
package deploy
