//go:build cluster

package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// BenchmarkBackup measures, on a 3-node sandbox loaded with about 100 MB,
// one backup job of each method with its verification, everything built
// without the race detector (agents and appliance): the backup's own time,
// and the restore and the whole verification of it.
func BenchmarkBackup(b *testing.B) {
	bin := plainBinary(b)
	sb := startGalera(b, "backupbench", bin, backupBenchBasePort)
	mib := loadData(b, sb, sb.Nodes()[0].Name, 100)
	a := startBackupAppliance(b, bin, sb, `      - {method: mariabackup, schedule: "0 3 1 1 *", keep: 1, verify: true, dir: DIR}
      - {method: dump, schedule: "0 3 1 1 *", keep: 1, verify: true, dir: DIR}
`)
	type result struct {
		backup, verify, restore, job time.Duration
		size                         int64
	}
	results := map[string]result{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, method := range []string{"mariabackup", "dump"} {
			j := a.startJob(b, map[string]any{"kind": "backup", "cluster": sb.ClusterName(), "method": method})
			j = a.waitJob(b, j.ID, 20*time.Minute)
			if j.State != "succeeded" {
				b.Fatalf("%s job %s %s: %s", method, j.ID, j.State, j.Reason)
			}
			_, backupTook, mout, _ := j.step("backup:")
			_, verifyTook, vout, _ := j.step("verify")
			var m struct {
				Size int64 `json:"size_bytes"`
			}
			var v struct {
				Result struct {
					RestoreSeconds float64 `json:"restore_seconds"`
				}
			}
			_ = json.Unmarshal(mout, &m)
			_ = json.Unmarshal(vout, &v)
			results[method] = result{backup: backupTook, verify: verifyTook, job: j.Ended.Sub(j.Started), size: m.Size,
				restore: time.Duration(v.Result.RestoreSeconds * float64(time.Second))}
		}
	}
	b.StopTimer()
	fmt.Printf("\nbackup jobs of a 3-node Galera sandbox holding %.0f MiB of InnoDB data (plain build, 2 cores):\n", mib)
	fmt.Printf("  %-12s %10s %10s %12s %10s %10s\n", "method", "backup", "size", "verify", "restore", "whole job")
	for _, method := range []string{"mariabackup", "dump"} {
		r := results[method]
		fmt.Printf("  %-12s %9.1fs %7.1f MiB %11.1fs %9.1fs %9.1fs\n", method, r.backup.Seconds(), float64(r.size)/(1<<20), r.verify.Seconds(), r.restore.Seconds(), r.job.Seconds())
		b.ReportMetric(r.backup.Seconds(), "s-backup-"+method)
		b.ReportMetric(r.restore.Seconds(), "s-restore-"+method)
	}
	fmt.Println()
}
