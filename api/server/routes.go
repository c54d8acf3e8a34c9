package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/console"
	"github.com/batonhq/baton/fsm"
)

func (s *Server) routes() {
	get := func(h handler) method { return method{role: RoleRead, handler: h} }
	work := func(h handler) method { return method{role: RoleWorker, leader: true, handler: h} }
	op := func(h handler) method { return method{role: RoleOperator, leader: true, handler: h} }

	s.route(api.PathRegister, map[string]method{"POST": work(s.register)})
	s.route(api.PathWorkers, map[string]method{"GET": get(s.listWorkers)})
	s.route(api.PathWorker, map[string]method{"GET": get(s.getWorker), "DELETE": op(s.removeWorker)})
	s.route(api.PathHeartbeat, map[string]method{"POST": work(s.heartbeat)})
	s.route(api.PathLeave, map[string]method{"POST": work(report(s, "leave", true, nil, func(w fsm.WorkerID, req api.LeaveRequest) fsm.Body {
		return fsm.Leave{Worker: w, Incarnation: req.Incarnation}
	}))})
	s.route(api.PathAssignment, map[string]method{"GET": {role: RoleRead, handler: s.assignment}})
	s.route(api.PathDrained, map[string]method{"POST": work(report(s, "drained", true, checkDrained, func(w fsm.WorkerID, req api.DrainedRequest) fsm.Body {
		return fsm.DrainReport{Worker: w, Incarnation: req.Incarnation, Items: req.Items}
	}))})
	s.route(api.PathActivated, map[string]method{"POST": work(report(s, "activated", true, checkActivated, func(w fsm.WorkerID, req api.ActivatedRequest) fsm.Body {
		return fsm.Activate{Worker: w, Incarnation: req.Incarnation, Items: req.Items}
	}))})
	s.route(api.PathCheckpoints, map[string]method{"POST": work(report(s, "checkpoint", false, checkCheckpoints, func(w fsm.WorkerID, req api.CheckpointsRequest) fsm.Body {
		return fsm.Checkpoint{Worker: w, Incarnation: req.Incarnation, Items: req.Items}
	}))})
	s.route(api.PathReleased, map[string]method{"POST": work(report(s, "released", true, checkReleased, func(w fsm.WorkerID, req api.ReleasedRequest) fsm.Body {
		return fsm.Release{Worker: w, Incarnation: req.Incarnation, Items: req.Items}
	}))})
	s.route(api.PathCordon, map[string]method{"POST": op(s.cordon)})

	s.route(api.PathPartitions, map[string]method{"GET": get(s.listPartitions), "POST": op(s.declare), "DELETE": op(s.removePartitions)})
	s.route(api.PathPartition, map[string]method{"GET": get(s.getPartition), "DELETE": op(s.removePartition)})
	s.route(api.PathMove, map[string]method{"POST": op(s.move)})
	s.route(api.PathPin, map[string]method{"POST": op(s.pin)})
	s.route(api.PathHandoffs, map[string]method{"GET": get(s.listHandoffs)})
	s.route(api.PathRebalance, map[string]method{"POST": op(s.rebalance)})
	s.route(api.PathPlan, map[string]method{"GET": {role: RoleRead, leader: true, handler: s.plan}})

	s.route(api.PathAudit, map[string]method{"GET": get(s.auditQuery)})
	s.route(api.PathAuditFollow, map[string]method{"GET": get(s.auditFollow)})

	s.route(api.PathStatus, map[string]method{"GET": get(s.status)})
	s.route(api.PathSummary, map[string]method{"GET": get(s.summary)})
	s.route(api.PathNodes, map[string]method{"GET": get(s.nodes)})
	s.route(api.PathJoin, map[string]method{"POST": op(s.join)})
	s.route(api.PathRemove, map[string]method{"POST": op(s.removeNode)})

	// Metrics and probes need no token: scrapers and orchestrators call them.
	s.public(api.PathMetrics, promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))
	s.public(api.PathHealth, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "node": s.node.ID()})
	}))
	s.public(api.PathReady, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.node.Ready(); err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "node": s.node.ID()})
	}))
	// The console's static files need no token either: every data call the
	// page makes goes to the API above with the user's token.
	s.mux.Handle(console.Prefix, s.console)
	s.mux.Handle(console.Prefix+"/", s.console)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, api.Errorf(api.CodeNotFound, "no endpoint %s %s", r.Method, r.URL.Path))
	})
}
