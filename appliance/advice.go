package appliance

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/exporter/mysql"
	"github.com/nines-project/nines/galera"
)

// adviceView is GET /api/v1/clusters/:name/advice: recommendations drawn
// from what nines measured on the cluster. Read on demand: it reads a week
// of probe writes from the store.
type adviceView struct {
	Cluster string `json:"cluster"`
	// RestartSeconds is the time a node restart is taken to need: the
	// longest nines measured in its jobs, at least 10 minutes.
	RestartSeconds         float64 `json:"restart_seconds"`
	MeasuredRestartSeconds float64 `json:"measured_restart_seconds,omitempty"`
	// StallSeconds is what a node crash cost the writers: the write stall
	// of the latest node-crash (or writer-kill) drill, named by Drill;
	// without one, the longest probe write of the last 7 days.
	StallSeconds float64 `json:"stall_seconds"`
	Drill        string  `json:"drill,omitempty"`
	drillAt      time.Time
	Advice       []galera.Advice `json:"advice"`
	// Errors name what could not be read (a node not scraped yet, an odd
	// option); the advice lists what could.
	Errors []string `json:"errors"`
	Note   string   `json:"note,omitempty"`
}

const adviceStallWindow = 7 * 24 * time.Hour

func (a *App) advice(c echo.Context) error {
	name := c.Param("name")
	cl := a.clusterConfig(name)
	if cl == nil {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", ErrorType: "not_found", Error: "no cluster named " + name})
	}
	v := adviceView{Cluster: name, Advice: []galera.Advice{}, Errors: []string{}}
	if cl.Kind != nines.KindGalera {
		v.Note = "advice covers Galera clusters (the IST window and eviction timeouts)"
		return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": v})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 10*time.Second)
	defer cancel()
	sel := fmt.Sprintf("cluster=%q", name)
	one := func(expr string) (float64, bool, error) {
		ss, err := a.query.Query(ctx, expr, time.Now())
		if err != nil || len(ss) == 0 {
			return 0, false, err
		}
		return ss[0].Value, true, nil
	}
	restart := galera.MinRestartBudget
	if s, ok, err := one(fmt.Sprintf("max(nines_galera_restart_seconds{%s})", sel)); err != nil {
		v.Errors = append(v.Errors, "the measured restart time: "+err.Error())
	} else if ok {
		v.MeasuredRestartSeconds = s
		if d := time.Duration(s * float64(time.Second)); d > restart {
			restart = d
		}
	}
	v.RestartSeconds = restart.Seconds()
	// The stall a node crash cost: the latest node-crash drill's, which
	// measured exactly that, else the probe's longest write of 7 days.
	stall, source := time.Duration(0), "the probe's longest write of 7 days"
	if recs, err := a.drills.list(name); err == nil {
		for _, d := range recs {
			if (d.Scenario == "node-crash" || d.Scenario == "writer-kill") && d.State == "done" && d.StallSeconds > 0 && (v.Drill == "" || d.Start.After(v.drillAt)) {
				v.Drill, v.drillAt, v.StallSeconds = d.ID, d.Start, d.StallSeconds
				stall, source = time.Duration(d.StallSeconds*float64(time.Second)), d.Scenario+" drill "+d.ID
			}
		}
	}
	if v.Drill == "" {
		if s, ok, err := one(fmt.Sprintf("max(max_over_time(nines_probe_duration_seconds{%s}[%ds]))", sel, int(adviceStallWindow.Seconds()))); err != nil {
			v.Errors = append(v.Errors, "the longest probe write: "+err.Error())
		} else if ok {
			v.StallSeconds, stall = s, time.Duration(s*float64(time.Second))
		}
	}
	fill := map[string]float64{}
	rates, err := a.query.Query(ctx, fmt.Sprintf("rate(mysql_global_status_wsrep_replicated_bytes{%[1]s}[10m]) + rate(mysql_global_status_wsrep_received_bytes{%[1]s}[10m])", sel), time.Now())
	if err != nil {
		v.Errors = append(v.Errors, "the gcache fill rate: "+err.Error())
	}
	for _, s := range rates {
		fill[s.Labels["instance"]] = s.Value
	}

	latest := map[string]*nines.Snapshot{}
	for _, s := range a.exp.Latest() {
		if s.Cluster == name {
			latest[s.Instance] = s
		}
	}
	for _, n := range cl.Nodes {
		s := latest[n.Address]
		if s == nil || !s.Up || s.Variables["wsrep_provider_options"] == "" {
			v.Errors = append(v.Errors, n.Address+": not read yet or down: no wsrep_provider_options")
			continue
		}
		opts := s.Variables["wsrep_provider_options"]
		if size, ok := mysql.GcacheSize(opts); !ok {
			v.Errors = append(v.Errors, n.Address+": gcache.size unreadable in wsrep_provider_options")
		} else if rate, ok := fill[n.Address]; !ok {
			v.Errors = append(v.Errors, n.Address+": no 10 minutes of wsrep byte counters in the store yet")
		} else {
			v.Advice = append(v.Advice, galera.ISTWindow(galera.ISTWindowInput{Node: n.Address, GcacheBytes: size, FillBytesPerSecond: rate, Restart: restart}))
		}
		ev, err := galera.Eviction(n.Address, opts, stall, source)
		if err != nil {
			v.Errors = append(v.Errors, err.Error())
			continue
		}
		v.Advice = append(v.Advice, ev)
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": v})
}
