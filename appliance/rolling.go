package appliance

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/probe"
	galerarb "github.com/nines-project/nines/remediator/galera"
	replrb "github.com/nines-project/nines/remediator/replication"
)

var _ galerarb.Restartable = (*agentNode)(nil)

// rollingGrace is how long a planned stop waits for the server to shut
// down cleanly: a graceful stop takes 1-3 s, and a kill loses the seqno
// an IST needs.
const rollingGrace = 60 * time.Second

// Stop stops the server gracefully through its agent.
func (n *agentNode) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, rollingGrace+agentTimeout)
	defer cancel()
	if _, err := n.c.Stop(ctx, agent.StopRequest{GraceSeconds: int(rollingGrace.Seconds())}); err != nil {
		return fmt.Errorf("stop %s: %w", n.name, err)
	}
	return nil
}

// Info reads the running server's pid, version, uptime and how it
// joined, through its agent.
func (n *agentNode) Info(ctx context.Context) (galerarb.ServerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	in, err := n.c.ServerInfo(ctx)
	if err != nil {
		return galerarb.ServerInfo{}, fmt.Errorf("server info of %s: %w", n.name, err)
	}
	return galerarb.ServerInfo{Pid: in.Pid, Version: in.Version, UptimeSeconds: in.UptimeSeconds,
		StateTransfer: in.StateTransfer, StateTransferLine: in.StateTransferLine}, nil
}

// Current is the node the writer backend sends writes to: the first
// server that is UP and not a backup, else the first UP backup, as
// HAProxy picks them (without allbackups). "" when none is UP.
func (w *lbWriter) Current(ctx context.Context) (string, error) {
	stats, err := w.rt.Servers(ctx)
	if err != nil {
		return "", fmt.Errorf("haproxy %s: %w", w.backend, err)
	}
	byServer := map[string]string{}
	for addr, s := range w.servers {
		byServer[s] = addr
	}
	var backup string
	for _, s := range stats {
		if s.Backend != w.backend || !s.Up() {
			continue
		}
		if !s.Backup {
			return byServer[s.Server], nil
		}
		if backup == "" {
			backup = byServer[s.Server]
		}
	}
	return backup, nil
}

var _ galerarb.Writer = (*lbWriter)(nil)

// galeraWriters gives the rolling restart each Galera cluster's HAProxy
// writer, nil for a cluster without one.
func galeraWriters(cfg *config.Config) func(string) galerarb.Writer {
	ws := map[string]*lbWriter{}
	for _, c := range cfg.Clusters {
		if c.HAProxy != nil && c.HAProxy.WriterBackend != "" {
			ws[c.Name] = newLBWriter(c)
		}
	}
	return func(cluster string) galerarb.Writer {
		if w, ok := ws[cluster]; ok {
			return w
		}
		return nil
	}
}

// probeStall reads the probe's write stall of cluster in [from, to) from
// the store: SLI seconds counted bad and probe writes failed. The store
// holds a second once the probe counted it, so a stall in the last
// second of the window may be missing.
func (a *App) probeStall(ctx context.Context, cluster string, from, to time.Time) (galerarb.Stall, error) {
	window := strconv.Itoa(int(math.Ceil(to.Sub(from).Seconds()))+1) + "s"
	sel := `{cluster=` + strconv.Quote(cluster) + `}`
	var out galerarb.Stall
	for _, q := range []struct {
		expr string
		into *float64
	}{
		{`sum(increase(` + probe.MetricSeconds + `{cluster=` + strconv.Quote(cluster) + `,result="bad"}[` + window + `]))`, &out.BadSeconds},
		{`sum(increase(` + probe.MetricFailed + sel + `[` + window + `]))`, &out.FailedWrites},
	} {
		res, err := a.query.Query(ctx, q.expr, to)
		if err != nil {
			return out, fmt.Errorf("read the probe's stall of %s: %w", cluster, err)
		}
		if len(res) > 0 {
			*q.into = math.Round(res[0].Value)
		}
	}
	return out, nil
}

var _ replrb.Restartable = (*replNode)(nil)

// Stop stops the server gracefully through its agent.
func (n *replNode) Stop(ctx context.Context) error {
	c, err := n.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, rollingGrace+agentTimeout)
	defer cancel()
	if _, err := c.Stop(ctx, agent.StopRequest{GraceSeconds: int(rollingGrace.Seconds())}); err != nil {
		return fmt.Errorf("stop %s: %w", n.name, err)
	}
	return nil
}

// Start starts the server through its agent and returns once it answers
// SQL.
func (n *replNode) Start(ctx context.Context) error {
	c, err := n.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, agent.DefaultStartTimeout+agentTimeout)
	defer cancel()
	if _, err := c.Start(ctx, agent.StartRequest{Wait: agent.WaitReady}); err != nil {
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	return nil
}

// Info reads the running server's pid, version and uptime through its
// agent.
func (n *replNode) Info(ctx context.Context) (replrb.ServerInfo, error) {
	c, err := n.client()
	if err != nil {
		return replrb.ServerInfo{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	in, err := c.ServerInfo(ctx)
	if err != nil {
		return replrb.ServerInfo{}, fmt.Errorf("server info of %s: %w", n.name, err)
	}
	return replrb.ServerInfo{Pid: in.Pid, Version: in.Version, UptimeSeconds: in.UptimeSeconds}, nil
}
