package fleetsim

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/exporter"
	"github.com/nines-project/nines/internal/testbin"
)

// ports is this package's block of listener ports.
var ports = testbin.NewPorts(30800, 30900)

func startFleet(t *testing.T, nodes int) *Fleet {
	t.Helper()
	base, err := ports.Next()
	if err != nil {
		t.Fatal(err)
	}
	// Next promises one free port; the block is this package's alone, so
	// the next nodes-1 are free too unless a test left them open.
	for range nodes - 1 {
		if _, err := ports.Next(); err != nil {
			t.Fatal(err)
		}
	}
	f, err := Start(Options{Nodes: nodes, ClusterSize: 3, BasePort: base, User: "nines", Password: "s3cret-pass"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// TestScraperReadsSimulatedGaleraNode: nines' real scraper reads a
// simulated node as it reads a real one: up, Galera Synced in a Primary
// component of 3 with the cluster's UUID, the node's name from its
// variables, on one connection, and counters that move between seconds.
func TestScraperReadsSimulatedGaleraNode(t *testing.T) {
	f := startFleet(t, 7) // two clusters of 3, and one of 1
	cls := f.Clusters()
	if len(cls) != 3 || len(cls[0].Nodes) != 3 || len(cls[2].Nodes) != 1 {
		t.Fatalf("clusters %+v, want 3, 3 and 1 nodes", cls)
	}
	scrape := func(addr string) []*nines.Snapshot {
		s, err := exporter.NewScraper(exporter.Target{Cluster: "c", Kind: nines.KindGalera, Address: addr, User: "nines", Password: "s3cret-pass"},
			exporter.Options{Interval: time.Second, VariablesInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		first := s.Scrape(t.Context())
		time.Sleep(1100 * time.Millisecond)
		return []*nines.Snapshot{first, s.Scrape(t.Context())}
	}
	snaps := scrape(cls[0].Nodes[1])
	a, b := snaps[0], snaps[1]
	for _, s := range snaps {
		if !s.Up || s.Err != "" {
			t.Fatalf("scrape: up %v, err %q", s.Up, s.Err)
		}
	}
	g := b.Galera
	if g == nil || !g.Synced() || g.ClusterSize != 3 || g.NodeName != "n2" || g.ClusterName != "fleet-0001" {
		t.Fatalf("galera status %+v, want Synced, size 3, node n2 of fleet-0001", g)
	}
	if len(a.Status) < 600 || len(a.Variables) < 600 {
		t.Errorf("%d status and %d variables, want a real node's 600 and more", len(a.Status), len(a.Variables))
	}
	if b.Galera.LastCommitted <= a.Galera.LastCommitted || b.Status["Questions"] == a.Status["Questions"] {
		t.Errorf("counters did not move in a second: last_committed %d -> %d, Questions %s -> %s",
			a.Galera.LastCommitted, b.Galera.LastCommitted, a.Status["Questions"], b.Status["Questions"])
	}
	other := scrape(cls[1].Nodes[0])[0].Galera
	if other.ClusterStateUUID == g.ClusterStateUUID {
		t.Errorf("two clusters share state UUID %s", g.ClusterStateUUID)
	}
	if lone := scrape(cls[2].Nodes[0])[0].Galera; lone.ClusterSize != 1 {
		t.Errorf("the last, short cluster says size %d, want 1", lone.ClusterSize)
	}
	// Two scrapers, one connection each; statements: status, variables
	// and fast variables, then status and fast variables.
	if got := f.Connections(); got != 3 {
		t.Errorf("%d logins, want 3 (one per scraper)", got)
	}
}

// TestLoginAndUnknownStatements: a wrong password is refused as MariaDB
// refuses it, and a statement the simulator does not know is an error
// naming it, never an empty answer.
func TestLoginAndUnknownStatements(t *testing.T) {
	f := startFleet(t, 1)
	addr := f.Clusters()[0].Nodes[0]
	open := func(pass string) *sql.DB {
		cfg := driver.NewConfig()
		cfg.Net, cfg.Addr, cfg.User, cfg.Passwd = "tcp", addr, "nines", pass
		c, err := driver.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(c)
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := open("wrong").PingContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "Access denied") {
		t.Fatalf("wrong password: %v, want Access denied", err)
	}
	db := open("s3cret-pass")
	_, err = db.ExecContext(ctx, "DELETE FROM billing.accounts")
	if err == nil || !strings.Contains(err.Error(), "not simulated: DELETE FROM billing.accounts") {
		t.Fatalf("unknown statement: %v", err)
	}
	var name, value string
	if err := db.QueryRowContext(ctx, "SHOW GLOBAL VARIABLES LIKE 'wsrep_node_name'").Scan(&name, &value); err != nil || value != "n1" {
		t.Fatalf("LIKE: %q %q %v", name, value, err)
	}
}
