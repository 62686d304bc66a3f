package appliance

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nines-project/nines/appliance/store"
	"github.com/nines-project/nines/rules"
	"github.com/nines-project/nines/rules/packs"
	"github.com/nines-project/nines/rules/slo"
)

// BenchmarkRuleEvaluation measures one evaluation round of every built-in
// rule and the SLO rules over 3, 100 and 1,000 simulated Galera nodes
// (clusters of three), with ten minutes of history written straight to the
// store.
func BenchmarkRuleEvaluation(b *testing.B) {
	for _, nodes := range []int{3, 100, 1000} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			st, err := store.Open(store.Options{DataDir: b.TempDir(), Retention: 24 * time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			now := time.Now()
			clusters := writeSimulatedFleet(st, nodes, now)

			var specs []slo.Spec
			for _, c := range clusters {
				specs = append(specs, slo.Spec{Cluster: c, Target: 99.999, Window: 30 * 24 * time.Hour})
			}
			groups, err := slo.Rules(specs)
			if err != nil {
				b.Fatal(err)
			}
			sloFile, err := rules.Marshal(groups)
			if err != nil {
				b.Fatal(err)
			}
			m := rules.NewManager(storeQuerier{st}, storeAppender{st, newIngester(st, nil)}, nil, rules.Options{})
			if err := m.Load(append(packs.Sources(), rules.Source{Name: "generated/slo.yml", Content: sloFile})); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			m.EvalOnce(ctx, true) // warm caches once, as the running appliance has
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.EvalOnce(ctx, true)
			}
			b.StopTimer()
			perRound := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(perRound.Microseconds())/1000, "ms/round")
			for g, n := range m.Failures() {
				if n > 0 {
					b.Errorf("group %s failed %d times", g, n)
				}
			}
			fmt.Printf("rule evaluation, %4d nodes in %3d clusters: %8.2f ms per round (all built-in and SLO rules)\n", nodes, len(clusters), float64(perRound.Microseconds())/1000)
		})
	}
}

// writeSimulatedFleet writes ten minutes (one sample per 10 s) of the
// series the rules read, for n healthy Galera nodes in clusters of three.
func writeSimulatedFleet(st *store.Store, n int, now time.Time) []string {
	var clusters []string
	const steps = 60
	for step := 0; step < steps; step++ {
		ts := now.Add(time.Duration(step-steps) * 10 * time.Second).UnixMilli()
		var batch []store.Series
		add := func(name string, v float64, kv ...string) {
			ls := []store.Label{{Name: "__name__", Value: name}}
			for i := 0; i+1 < len(kv); i += 2 {
				ls = append(ls, store.Label{Name: kv[i], Value: kv[i+1]})
			}
			batch = append(batch, store.Series{Labels: ls, Value: v, TimestampMs: ts})
		}
		for c := 0; c*3 < n; c++ {
			cluster := fmt.Sprintf("c%04d", c)
			if step == 0 {
				clusters = append(clusters, cluster)
			}
			size := min(3, n-c*3)
			add("nines_cluster_info", 1, "cluster", cluster, "kind", "galera")
			add("nines_cluster_nodes", float64(size), "cluster", cluster)
			for _, r := range []string{"good", "bad", "unknown"} {
				v := 0.0
				if r == "good" {
					v = float64(step * 10)
				}
				add("nines_probe_seconds_total", v, "cluster", cluster, "result", r)
			}
			for i := 0; i < size; i++ {
				inst := fmt.Sprintf("10.0.%d.%d:3306", c/250, (c%250)*3+i)
				l := []string{"cluster", cluster, "instance", inst}
				for name, v := range map[string]float64{
					"mysql_up": 1, "nines_scrape_success": 1, "mysql_global_status_wsrep_cluster_status": 1,
					"mysql_global_status_wsrep_cluster_size": float64(size), "mysql_global_status_wsrep_local_state": 4,
					"mysql_global_variables_wsrep_desync": 0, "mysql_global_status_wsrep_local_recv_queue": 0,
					"mysql_global_status_wsrep_flow_control_paused_ns": 0, "mysql_global_status_wsrep_local_cert_failures": float64(step),
					"mysql_global_status_wsrep_replicated_bytes": float64(step * 1e5), "mysql_global_status_wsrep_received_bytes": float64(step * 2e5),
					"mysql_galera_gcache_size_bytes": 128 << 20, "nines_galera_evs_delayed_nodes": 0,
					"nines_probe_success": 1, "nines_probe_duration_seconds": 0.004,
				} {
					add(name, v, l...)
				}
			}
		}
		st.Write(batch)
	}
	st.Flush()
	return clusters
}
