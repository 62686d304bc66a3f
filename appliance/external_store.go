package appliance

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/appliance/store"
	"github.com/nines-project/nines/internal/metric"
)

// querier is where the rules, the reports and the API read: the embedded
// store, or the external one (store: in nines.yaml) with the embedded
// store as its fallback.
//
// The fallback is what keeps an appliance from going blind: when the
// external store cannot answer, the rules still run, on this appliance's
// own data (its clusters only), and NinesExternalStoreDown says so.
type querier struct {
	local  *store.Store
	remote *store.Remote // nil without an external store
	log    *slog.Logger

	failures atomic.Uint64
	down     atomic.Bool
}

func newQuerier(local *store.Store, cfg *config.ExternalStore, log *slog.Logger) (*querier, error) {
	q := &querier{local: local, log: log}
	if cfg == nil {
		return q, nil
	}
	r, err := store.NewRemote(store.RemoteOptions{URL: cfg.URL, Token: cfg.Token.Reveal(), RootCAs: cfg.CAs, Timeout: cfg.Timeout.Duration})
	if err != nil {
		return nil, err
	}
	q.remote = r
	log.Info("rules, reports and the API read the external store", "url", r.URL())
	return q, nil
}

// Query reads the external store, or the embedded one when there is none
// or it fails.
func (q *querier) Query(ctx context.Context, expr string, at time.Time) ([]store.Sample, error) {
	if q.remote == nil {
		return q.local.Query(ctx, expr, at)
	}
	s, err := q.remote.Query(ctx, expr, at)
	if err == nil {
		if q.down.Swap(false) {
			q.log.Info("external store answers again; reading it", "url", q.remote.URL())
		}
		return s, nil
	}
	if ctx.Err() != nil {
		return nil, err
	}
	q.failures.Add(1)
	if !q.down.Swap(true) {
		q.log.Warn("external store failing; reading the embedded store (this appliance's clusters only) until it answers", "err", err)
	}
	return q.local.Query(ctx, expr, at)
}

// handler serves the Prometheus read endpoints: proxied to the external
// store when there is one.
func (q *querier) handler(local http.Handler) http.Handler {
	if q == nil || q.remote == nil {
		return local
	}
	return q.remote.Handler()
}

// metrics are the external store's health, when there is one.
func (q *querier) metrics() []metric.Metric {
	if q == nil || q.remote == nil {
		return nil
	}
	set := &metric.Set{}
	up := 1.0
	if q.down.Load() {
		up = 0
	}
	set.Add("nines_store_external_up", "Whether the last query of the external store succeeded (0: reading the embedded store instead).", metric.Gauge, up)
	set.Add("nines_store_external_failures_total", "Queries of the external store that failed and were answered by the embedded store.", metric.Counter, float64(q.failures.Load()))
	return set.Metrics
}
