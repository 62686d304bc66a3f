package appliance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/exporter/qan"
)

// Query analytics reads each node's statement digests every qanInterval,
// not every second: the summary table holds up to
// performance_schema_digests_size rows, too much to read at the scrape's
// pace, and a digest's work over minutes is what a slow cluster shows.
// Only the qanTopN busiest digests of each interval are stored, so a
// node adds at most qanTopN×9+1 series per interval whatever its workload.
const (
	qanInterval     = 10 * time.Second
	qanTopN         = 20
	qanReadTimeout  = 5 * time.Second
	qanTextCacheMax = 2000 // digest texts kept for the API, least recently seen dropped first
	// The blocking read runs on demand only; answers within blockingReuse
	// of a read share it, so a page left open or many users cost each
	// node at most one statement per blockingReuse.
	blockingTimeout = 5 * time.Second
	blockingReuse   = 5 * time.Second
)

// qanNode is one node's digest collector and its connection, shared with
// the blocking read (one connection per node for both).
type qanNode struct {
	cluster, instance string
	db                *sql.DB
	tracker           qan.Tracker

	mu     sync.Mutex
	state  string // "on", "off", "error", "unknown" (not read yet)
	why    string
	readAt time.Time
}

// qanStatus is a node's digest state in the API.
type qanStatus struct {
	Instance string     `json:"instance"`
	Digests  string     `json:"digests"` // on | off | error | unknown
	Why      string     `json:"why,omitempty"`
	ReadAt   *time.Time `json:"read_at,omitempty"`
}

func (n *qanNode) status() qanStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := qanStatus{Instance: n.instance, Digests: n.state, Why: n.why}
	if !n.readAt.IsZero() {
		t := n.readAt
		s.ReadAt = &t
	}
	return s
}

type textEntry struct {
	qan.Text
	seen time.Time
}

type blockingRead struct {
	at    time.Time
	nodes []blockingNode
}

// blockingNode is one node's answer to the blocking read.
type blockingNode struct {
	Instance string `json:"instance"`
	Error    string `json:"error,omitempty"`
	*qan.Blocking
}

// queryAnalytics owns the digest collectors of every cluster's nodes, the
// digest texts, and the on-demand blocking reads.
type queryAnalytics struct {
	log   *slog.Logger
	in    *ingester
	nodes map[string][]*qanNode // cluster → its nodes
	now   func() time.Time

	mu    sync.Mutex
	texts map[qan.Key]*textEntry

	// blockMu guards blocks; a cluster's read holds its own lock, so one
	// cluster's slow nodes never hold up another's read.
	blockMu    sync.Mutex
	blocks     map[string]blockingRead
	blockLocks map[string]*sync.Mutex

	closeOnce sync.Once
}

func newQueryAnalytics(cfg *config.Config, in *ingester, log *slog.Logger) (*queryAnalytics, error) {
	q := &queryAnalytics{log: log, in: in, nodes: map[string][]*qanNode{}, now: time.Now,
		texts: map[qan.Key]*textEntry{}, blocks: map[string]blockingRead{}, blockLocks: map[string]*sync.Mutex{}}
	for _, c := range cfg.Clusters {
		q.blockLocks[c.Name] = &sync.Mutex{}
		for _, n := range c.Nodes {
			db, err := sqlNodeDB(c, n.Address)
			if err != nil {
				q.close()
				return nil, fmt.Errorf("query analytics: %w", err)
			}
			q.nodes[c.Name] = append(q.nodes[c.Name], &qanNode{cluster: c.Name, instance: n.Address, db: db, state: "unknown"})
		}
	}
	return q, nil
}

// close closes the nodes' connections; Run calls it too when it fails
// before the collectors started.
func (q *queryAnalytics) close() {
	q.closeOnce.Do(func() {
		for _, ns := range q.nodes {
			for _, n := range ns {
				n.db.Close()
			}
		}
	})
}

// run collects every node's digests until ctx ends.
func (q *queryAnalytics) run(ctx context.Context) {
	defer q.close()
	var wg sync.WaitGroup
	for _, ns := range q.nodes {
		for _, n := range ns {
			wg.Add(1)
			go func() { defer wg.Done(); q.collect(ctx, n) }()
		}
	}
	wg.Wait()
}

func (q *queryAnalytics) collect(ctx context.Context, n *qanNode) {
	t := time.NewTicker(qanInterval)
	defer t.Stop()
	for {
		q.collectOnce(ctx, n)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// collectOnce reads one node's digests and stores the interval's top N.
// A failed read forgets the baseline (the next read starts a new one:
// no delta spans a gap) and stores no digest, so the last ones go stale.
func (q *queryAnalytics) collectOnce(ctx context.Context, n *qanNode) {
	rctx, cancel := context.WithTimeout(ctx, qanReadTimeout)
	defer cancel()
	now := q.now()
	rows, err := qan.ReadDigests(rctx, n.db)
	if ctx.Err() != nil {
		return
	}
	state, why := "on", ""
	var deltas []qan.Delta
	var off *qan.ErrDisabled
	switch {
	case errors.As(err, &off):
		state, why = "off", off.Why
		n.tracker.Reset()
	case err != nil:
		state, why = "error", err.Error()
		n.tracker.Reset()
	default:
		deltas = n.tracker.Observe(rows, qanTopN)
		q.learnTexts(rctx, n, deltas, now)
	}
	n.mu.Lock()
	if n.state != state {
		q.log.Info("statement digests", "cluster", n.cluster, "instance", n.instance, "state", state, "why", why)
	}
	n.state, n.why, n.readAt = state, why, now
	n.mu.Unlock()
	if state == "error" {
		q.in.write("nines:qan:"+n.instance, nil, now, false)
		return
	}
	q.in.write("nines:qan:"+n.instance, qan.Metrics(n.cluster, n.instance, state == "on", deltas), now, false)
}

// learnTexts reads the texts of the interval's digests not known yet (or
// known without an example), at most qanTopN per read.
func (q *queryAnalytics) learnTexts(ctx context.Context, n *qanNode, deltas []qan.Delta, now time.Time) {
	var missing []qan.Key
	q.mu.Lock()
	for _, d := range deltas {
		if e, ok := q.texts[d.Key]; ok {
			e.seen = now
			if e.Example != "" {
				continue
			}
		}
		missing = append(missing, d.Key)
	}
	q.mu.Unlock()
	if len(missing) == 0 {
		return
	}
	texts, err := qan.ReadTexts(ctx, n.db, missing)
	if err != nil {
		q.log.Debug("read digest texts", "instance", n.instance, "err", err)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for k, t := range texts {
		if e, ok := q.texts[k]; ok && t.Example == "" {
			t.Example = e.Example
		}
		q.texts[k] = &textEntry{Text: t, seen: now}
	}
	for len(q.texts) > qanTextCacheMax {
		var oldest qan.Key
		var at time.Time
		for k, e := range q.texts {
			if at.IsZero() || e.seen.Before(at) {
				oldest, at = k, e.seen
			}
		}
		delete(q.texts, oldest)
	}
}

func (q *queryAnalytics) text(k qan.Key) qan.Text {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.texts[k]; ok {
		return e.Text
	}
	return qan.Text{}
}

// digestRow is one digest's work over the window, on one node (or the
// whole cluster with by=cluster).
type digestRow struct {
	Instance string `json:"instance,omitempty"`
	Schema   string `json:"schema"`
	Digest   string `json:"digest"`
	qan.Text
	Seconds       float64 `json:"seconds"`
	Calls         float64 `json:"calls"`
	AvgSeconds    float64 `json:"avg_seconds"`
	RowsExamined  float64 `json:"rows_examined"`
	RowsSent      float64 `json:"rows_sent"`
	Errors        float64 `json:"errors"`
	Warnings      float64 `json:"warnings"`
	NoIndexUsed   float64 `json:"no_index_used"`
	FullScans     float64 `json:"full_scans"`
	TmpDiskTables float64 `json:"tmp_disk_tables"`
}

// querySorts maps the sort parameter to a row's value.
var querySorts = map[string]func(*digestRow) float64{
	"time":            func(r *digestRow) float64 { return r.Seconds },
	"calls":           func(r *digestRow) float64 { return r.Calls },
	"avg_time":        func(r *digestRow) float64 { return r.AvgSeconds },
	"rows_examined":   func(r *digestRow) float64 { return r.RowsExamined },
	"rows_sent":       func(r *digestRow) float64 { return r.RowsSent },
	"errors":          func(r *digestRow) float64 { return r.Errors },
	"warnings":        func(r *digestRow) float64 { return r.Warnings },
	"no_index_used":   func(r *digestRow) float64 { return r.NoIndexUsed },
	"full_scans":      func(r *digestRow) float64 { return r.FullScans },
	"tmp_disk_tables": func(r *digestRow) float64 { return r.TmpDiskTables },
}

func sortNames() []string {
	out := make([]string, 0, len(querySorts))
	for k := range querySorts {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func badData(c echo.Context, msg string) error {
	return c.JSON(http.StatusBadRequest, apiError{Status: "error", ErrorType: "bad_data", Error: msg})
}

// queries is GET /api/v1/clusters/:name/queries: the digests' work over
// a window (deltas summed from the store, not totals since start), joined
// with their texts, sorted and cut to limit.
func (a *App) queries(c echo.Context) error {
	name := c.Param("name")
	nodes, ok := a.qan.nodes[name]
	if !ok {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", ErrorType: "not_found", Error: "no cluster named " + name})
	}
	window := 15 * time.Minute
	if v := c.QueryParam("window"); v != "" {
		d, err := config.ParseDuration(v)
		if err != nil || d < time.Minute || d > 31*24*time.Hour {
			return badData(c, fmt.Sprintf("window %q: want a duration from 1m to 31d, such as 5m, 1h or 7d", v))
		}
		window = d
	}
	sortBy := "time"
	if v := c.QueryParam("sort"); v != "" {
		if _, ok := querySorts[v]; !ok {
			return badData(c, fmt.Sprintf("sort %q: want one of %v", v, sortNames()))
		}
		sortBy = v
	}
	by := "node"
	if v := c.QueryParam("by"); v != "" {
		if v != "node" && v != "cluster" {
			return badData(c, fmt.Sprintf("by %q: want node or cluster", v))
		}
		by = v
	}
	limit := 50
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return badData(c, fmt.Sprintf("limit %q: want a number from 1 to 500", v))
		}
		limit = n
	}
	sel := "cluster=" + strconv.Quote(name)
	if v := c.QueryParam("node"); v != "" {
		found := false
		for _, n := range nodes {
			found = found || n.instance == v
		}
		if !found {
			return badData(c, fmt.Sprintf("node %q is not a node of cluster %q", v, name))
		}
		sel += ",instance=" + strconv.Quote(v)
	}
	rows, err := a.digestRows(c.Request().Context(), sel, window, by == "cluster")
	if err != nil {
		return c.JSON(http.StatusServiceUnavailable, apiError{Status: "error", ErrorType: "unavailable", Error: err.Error()})
	}
	key := querySorts[sortBy]
	sort.SliceStable(rows, func(i, j int) bool {
		if a, b := key(rows[i]), key(rows[j]); a != b {
			return a > b
		}
		return rows[i].Seconds > rows[j].Seconds
	})
	if len(rows) > limit {
		rows = rows[:limit]
	}
	status := make([]qanStatus, 0, len(nodes))
	for _, n := range nodes {
		status = append(status, n.status())
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": map[string]any{
		"cluster": name, "window": window.String(), "sort": sortBy, "by": by,
		"interval_seconds": qanInterval.Seconds(), "top_n": qanTopN,
		"nodes": status, "digests": rows,
	}})
}

// digestRows sums each counter over the window, one store query per
// counter, and joins them by node and digest (by digest alone when
// cluster is set).
func (a *App) digestRows(ctx context.Context, sel string, window time.Duration, cluster bool) ([]*digestRow, error) {
	type key struct{ instance, schema, digest string }
	byKey := map[key]*digestRow{}
	span := strconv.FormatInt(int64(window/time.Second), 10) + "s"
	now := time.Now()
	for _, f := range qan.Fields {
		expr := fmt.Sprintf("sum_over_time(%s{%s}[%s])", f.Metric, sel, span)
		if cluster {
			expr = fmt.Sprintf("sum by (schema, digest) (%s)", expr)
		} else {
			expr = fmt.Sprintf("sum by (instance, schema, digest) (%s)", expr)
		}
		samples, err := a.query.Query(ctx, expr, now)
		if err != nil {
			return nil, fmt.Errorf("read %s from the store: %w", f.Metric, err)
		}
		for _, s := range samples {
			k := key{s.Labels["instance"], s.Labels["schema"], s.Labels["digest"]}
			r := byKey[k]
			if r == nil {
				r = &digestRow{Instance: k.instance, Schema: k.schema, Digest: k.digest}
				byKey[k] = r
			}
			setField(r, f.Metric, s.Value)
		}
	}
	out := make([]*digestRow, 0, len(byKey))
	for _, r := range byKey {
		if r.Calls > 0 {
			r.AvgSeconds = r.Seconds / r.Calls
		}
		r.Text = a.qan.text(qan.Key{Schema: r.Schema, Digest: r.Digest})
		out = append(out, r)
	}
	return out, nil
}

func setField(r *digestRow, name string, v float64) {
	switch name {
	case qan.MetricSeconds:
		r.Seconds = v
	case qan.MetricCalls:
		r.Calls = v
	case qan.MetricRowsExamined:
		r.RowsExamined = v
	case qan.MetricRowsSent:
		r.RowsSent = v
	case qan.MetricErrors:
		r.Errors = v
	case qan.MetricWarnings:
		r.Warnings = v
	case qan.MetricNoIndexUsed:
		r.NoIndexUsed = v
	case qan.MetricFullScans:
		r.FullScans = v
	case qan.MetricTmpDiskTables:
		r.TmpDiskTables = v
	}
}

// blocking is GET /api/v1/clusters/:name/blocking: what blocks whom on
// each node now, one statement per node within blockingTimeout. A read
// younger than blockingReuse is answered again instead of read anew.
func (a *App) blocking(c echo.Context) error {
	name := c.Param("name")
	nodes, ok := a.qan.nodes[name]
	if !ok {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", ErrorType: "not_found", Error: "no cluster named " + name})
	}
	read := a.qan.readBlocking(c.Request().Context(), name, nodes)
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": map[string]any{
		"cluster": name, "read_at": read.at, "nodes": read.nodes,
	}})
}

func (q *queryAnalytics) readBlocking(ctx context.Context, name string, nodes []*qanNode) blockingRead {
	lock := q.blockLocks[name]
	lock.Lock()
	defer lock.Unlock()
	q.blockMu.Lock()
	r, ok := q.blocks[name]
	q.blockMu.Unlock()
	if ok && q.now().Sub(r.at) < blockingReuse {
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, blockingTimeout)
	defer cancel()
	out := make([]blockingNode, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].Instance = n.instance
			b, err := qan.ReadBlocking(ctx, n.db)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Blocking = b
		}()
	}
	wg.Wait()
	r = blockingRead{at: q.now(), nodes: out}
	q.blockMu.Lock()
	q.blocks[name] = r
	q.blockMu.Unlock()
	return r
}
