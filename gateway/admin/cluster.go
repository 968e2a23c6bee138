package admin

import (
	"context"
	"errors"
	"net/http"
)

// Cluster membership changes for operators: the same operations as the
// root-key-authenticated /cluster/v1/change of `tresor serve`, but signed
// with an operator's access key and in the login audit like every admin
// action. A cluster whose root key is held in shares has no key file to
// authenticate with; its operators use these.

// Cluster is the node's replication, as the API needs it; nil on a node
// that runs alone.
type Cluster interface {
	// ChangeMembership runs op ("promote", "remove" or
	// "transfer-leadership") for node (optional for a transfer),
	// forwarded to the leader.
	ChangeMembership(ctx context.Context, op, node string) error
}

// ErrClusterUnavailable marks a change that failed because the cluster
// has no leader (or did not answer in time); it is retried later.
var ErrClusterUnavailable = errors.New("admin: the cluster has no leader")

// ClusterChangeRequest is POST /cluster/{op}.
type ClusterChangeRequest struct {
	Node string `json:"node,omitempty"`
}

// ClusterChange answers a change.
type ClusterChange struct {
	Op   string `json:"op"`
	Node string `json:"node,omitempty"`
}

func clusterChange(op string) func(*call) (int, any, error) {
	return func(c *call) (int, any, error) {
		if err := c.requireOperator(); err != nil {
			return 0, nil, err
		}
		if c.h.cfg.Cluster == nil {
			return 0, nil, apiError(http.StatusNotImplemented, "NotImplemented", "This node runs alone: it was started without cluster flags.")
		}
		var req ClusterChangeRequest
		if len(c.body) > 0 {
			if err := c.decode(&req); err != nil {
				return 0, nil, err
			}
		}
		if req.Node == "" && op != "transfer-leadership" {
			return 0, nil, apiError(http.StatusBadRequest, "InvalidArgument", op+" needs a node id.")
		}
		if err := c.h.cfg.Cluster.ChangeMembership(c.ctx, op, req.Node); err != nil {
			if errors.Is(err, ErrClusterUnavailable) {
				return 0, nil, apiError(http.StatusServiceUnavailable, "ServiceUnavailable", err.Error())
			}
			return 0, nil, apiError(http.StatusConflict, "InvalidState", err.Error())
		}
		return http.StatusOK, ClusterChange{Op: op, Node: req.Node}, nil
	}
}
