package appliance

import (
	"context"
	"fmt"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/haproxy"
	replrb "github.com/nines-project/nines/remediator/replication"
)

// lbWriter moves a cluster's writer in its HAProxy through the runtime
// API, so a failover or switchover does not wait for the health checks
// (two failed checks take a server out, two passing ones put it in: a
// second each way). The checks stay the judge afterwards: every state set
// here is one they would reach by themselves.
type lbWriter struct {
	rt      haproxy.Runtime
	backend string
	// servers maps a node's SQL address, the runbooks' node name, to its
	// HAProxy server name (haproxy.ServerName of its config position).
	servers map[string]string
}

func newLBWriter(c config.Cluster) *lbWriter {
	w := &lbWriter{rt: haproxy.Runtime{Socket: c.HAProxy.StatsSocket}, backend: c.HAProxy.WriterBackend, servers: map[string]string{}}
	for i, n := range c.Nodes {
		w.servers[n.Address] = haproxy.ServerName(i)
	}
	return w
}

func (w *lbWriter) server(node string) (string, error) {
	s, ok := w.servers[node]
	if !ok {
		return "", fmt.Errorf("haproxy %s: node %s is not in the cluster's config", w.backend, node)
	}
	return s, nil
}

// Fence takes the node out of the writer pool and closes its clients'
// sessions, so they reconnect to the next writer rather than keep a
// connection to a read-only server.
func (w *lbWriter) Fence(ctx context.Context, node string) error {
	s, err := w.server(node)
	if err != nil {
		return err
	}
	if err := w.rt.SetState(ctx, w.backend, s, haproxy.StateMaint); err != nil {
		return err
	}
	return w.rt.ShutdownSessions(ctx, w.backend, s)
}

// Admit puts the new writer in service now: out of maintenance and
// marked up without waiting for its checks to pass twice.
func (w *lbWriter) Admit(ctx context.Context, node string) error {
	s, err := w.server(node)
	if err != nil {
		return err
	}
	if err := w.rt.SetState(ctx, w.backend, s, haproxy.StateReady); err != nil {
		return err
	}
	return w.rt.SetHealth(ctx, w.backend, s, haproxy.HealthUp)
}

// Release hands a fenced node back to the checks, marked down first: it
// was UP before the fence, and ready alone would send writers to it until
// two checks failed. A node that becomes writer later passes its checks
// (or is admitted) again.
func (w *lbWriter) Release(ctx context.Context, node string) error {
	s, err := w.server(node)
	if err != nil {
		return err
	}
	if err := w.rt.SetHealth(ctx, w.backend, s, haproxy.HealthDown); err != nil {
		return err
	}
	return w.rt.SetState(ctx, w.backend, s, haproxy.StateReady)
}

// lbWriters gives the runbooks each cluster's HAProxy writer, nil for a
// cluster without an haproxy key.
func lbWriters(cfg *config.Config) replrb.Writers {
	ws := map[string]*lbWriter{}
	for _, c := range cfg.Clusters {
		if c.HAProxy != nil && c.HAProxy.WriterBackend != "" {
			ws[c.Name] = newLBWriter(c)
		}
	}
	return func(cluster string) (replrb.Writer, error) {
		if w, ok := ws[cluster]; ok {
			return w, nil
		}
		return nil, nil
	}
}
