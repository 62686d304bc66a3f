package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/nines-project/nines/exporter"
	"github.com/nines-project/nines/internal/testbin"
)

var (
	plainOnce    sync.Once
	plainBin     string
	plainCleanup = func() {}
	plainErr     error
)

// plainBinary builds nines without the race detector, for measurements
// (the race detector multiplies memory use).
func plainBinary(b *testing.B) string {
	b.Helper()
	plainOnce.Do(func() {
		plainBin, plainCleanup, plainErr = testbin.Build(false)
	})
	if plainErr != nil {
		b.Fatal(plainErr)
	}
	return plainBin
}

// questions reads the node's Questions counter: statements clients sent.
func questions(b *testing.B, db *sql.DB) int64 {
	b.Helper()
	var name string
	var v int64
	if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Questions'").Scan(&name, &v); err != nil {
		b.Fatal(err)
	}
	return v
}

// statementCounter measures statements per operation on a node, less the
// statements the measurement itself costs.
type statementCounter struct {
	db       *sql.DB
	overhead int64
}

func newStatementCounter(b *testing.B, db *sql.DB) *statementCounter {
	q0 := questions(b, db)
	q1 := questions(b, db)
	return &statementCounter{db: db, overhead: q1 - q0}
}

func (c *statementCounter) per(b *testing.B, before int64, ops int) float64 {
	return float64(questions(b, c.db)-before-c.overhead) / float64(ops)
}

type scrapeResult struct {
	nsPerScrape float64
	stmts       float64
}

// BenchmarkScrape compares, on the same sandbox node, one nines scrape
// (SHOW GLOBAL STATUS plus metric derivation) with one scrape of Debian's
// prometheus-mysqld-exporter and its default collectors, in wall time and
// in SQL statements counted by the node's Questions counter.
func BenchmarkScrape(b *testing.B) {
	sb := sharedGalera(b)
	node := sb.Nodes()[0]
	pw, err := os.ReadFile(sb.PasswordPath())
	if err != nil {
		b.Fatal(err)
	}
	password := strings.TrimSpace(string(pw))
	db, err := sb.DB(node.Name)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	counter := newStatementCounter(b, db)
	results := map[string]scrapeResult{}

	b.Run("nines", func(b *testing.B) {
		s, err := exporter.NewScraper(exporter.Target{Cluster: "bench", Address: node.Address(), User: "nines", Password: password}, exporter.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		if snap := s.Scrape(ctx); !snap.Up || snap.Err != "" {
			b.Fatalf("warm-up scrape: %+v", snap.Err)
		}
		before := questions(b, db)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			snap := s.Scrape(ctx)
			if !snap.Up {
				b.Fatal(snap.Err)
			}
			_ = exporter.SnapshotMetrics(snap)
		}
		b.StopTimer()
		r := scrapeResult{nsPerScrape: float64(b.Elapsed().Nanoseconds()) / float64(b.N), stmts: counter.per(b, before, b.N)}
		b.ReportMetric(r.stmts, "stmts/scrape")
		results["nines"] = r
	})

	b.Run("mysqld_exporter", func(b *testing.B) {
		bin, err := exec.LookPath("prometheus-mysqld-exporter")
		if err != nil {
			b.Fatalf("prometheus-mysqld-exporter not installed (scripts/install-deps.sh installs it): %v", err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(b))
		cmd := exec.Command(bin, "--web.listen-address="+addr)
		cmd.Env = append(os.Environ(), fmt.Sprintf("DATA_SOURCE_NAME=nines:%s@tcp(%s)/", password, node.Address()))
		out := &safeBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		scrape := func() string {
			resp, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				return ""
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return string(body)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(scrape(), "mysql_up 1") {
			if time.Now().After(deadline) {
				b.Fatalf("mysqld_exporter not scraping the node:\n%s", out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		before := questions(b, db)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if !strings.Contains(scrape(), "mysql_up 1") {
				b.Fatal("mysqld_exporter scrape failed")
			}
		}
		b.StopTimer()
		r := scrapeResult{nsPerScrape: float64(b.Elapsed().Nanoseconds()) / float64(b.N), stmts: counter.per(b, before, b.N)}
		b.ReportMetric(r.stmts, "stmts/scrape")
		results["mysqld_exporter"] = r
	})

	n, m := results["nines"], results["mysqld_exporter"]
	if n.nsPerScrape > 0 && m.nsPerScrape > 0 {
		fmt.Printf("\nscrape of one Galera node         wall time   statements\n")
		fmt.Printf("  nines                          %9.2f ms   %6.2f\n", n.nsPerScrape/1e6, n.stmts)
		fmt.Printf("  mysqld_exporter (Debian)       %9.2f ms   %6.2f\n", m.nsPerScrape/1e6, m.stmts)
		fmt.Printf("  nines / mysqld_exporter        %9.2fx     %6.2fx   (targets: <= 0.25x time, <= 3 statements)\n\n", n.nsPerScrape/m.nsPerScrape, n.stmts/m.stmts)
	}
}

// BenchmarkApplianceRSS runs the appliance (built without the race
// detector) against the 3-node sandbox for 30 s and reports its resident
// memory. Target: at most 120 MB.
func BenchmarkApplianceRSS(b *testing.B) {
	sb := sharedGalera(b)
	a := startApplianceBin(b, plainBinary(b), sb.ConfigPath(), sb.TokenPath())
	waitFor(b, a.started, 10*time.Second, "appliance scraping", func() bool { return len(a.query("mysql_up == 1")) == 3 })

	var peak, last int64
	cpu0, t0 := cpuSeconds(b, a.cmd.Process.Pid), time.Now()
	end := time.Now().Add(30 * time.Second)
	for time.Now().Before(end) {
		last = rssBytes(b, a.cmd.Process.Pid)
		peak = max(peak, last)
		time.Sleep(time.Second)
	}
	cpu := (cpuSeconds(b, a.cmd.Process.Pid) - cpu0) / time.Since(t0).Seconds()
	b.ReportMetric(float64(peak)/(1<<20), "MB-rss-peak")
	b.ReportMetric(float64(last)/(1<<20), "MB-rss-30s")
	b.ReportMetric(cpu*100, "%cpu")
	fmt.Printf("\nappliance monitoring a 3-node Galera sandbox for 30 s: RSS %.1f MB at 30 s, peak %.1f MB (target <= 120 MB), CPU %.1f %% of one core\n\n", float64(last)/(1<<20), float64(peak)/(1<<20), cpu*100)
}

// cpuSeconds is the user+system CPU time a process used so far.
func cpuSeconds(b *testing.B, pid int) float64 {
	b.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15 (clock ticks, 100/s).
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
	f := strings.Fields(rest)
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

func rssBytes(b *testing.B, pid int) int64 {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmRSS for pid %d", pid)
	return 0
}
