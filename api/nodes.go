package api

// PathNodes lists every member's status as the answering node reads it from
// each member's own PathStatus: what the console shows per node (state, term,
// applied index, digests) while it talks to one node only.
const PathNodes = "/v1/cluster/nodes"

// NodeStatusList answers PathNodes: the answering node's own status and one
// entry per other member, in membership order.
type NodeStatusList struct {
	// Node is the id of the node that answered.
	Node  string       `json:"node"`
	Nodes []NodeStatus `json:"nodes"`
}

// NodeStatus is one member's status, or why it could not be read (the member
// is down, cut off, or answered an error).
type NodeStatus struct {
	ID      string         `json:"id"`
	APIAddr string         `json:"api_addr,omitempty"`
	Status  *ClusterStatus `json:"status,omitempty"`
	Error   *Error         `json:"error,omitempty"`
	// TookMS is how long reading the member's status took, in milliseconds.
	TookMS int64 `json:"took_ms"`
}
