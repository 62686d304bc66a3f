package ndbsim

import (
	"strings"
	"testing"
)

// TestNdbinfoStatements: the embedded DDL splits into whole statements,
// one base table ndb$... behind each view (A.1.0).
func TestNdbinfoStatements(t *testing.T) {
	stmts := NdbinfoStatements()
	views, tables := 0, 0
	for _, s := range stmts {
		if strings.HasSuffix(s, ";") || strings.Contains(s, "\n--") {
			t.Errorf("statement keeps a separator or comment: %.80q", s)
		}
		switch {
		case strings.HasPrefix(s, "CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW ndbinfo."):
			views++
		case strings.HasPrefix(s, "CREATE TABLE ndbinfo.`ndb$"):
			tables++
			if !strings.HasSuffix(s, "ENGINE=InnoDB CHARACTER SET latin1") {
				t.Errorf("base table without latin1: %.80q", s)
			}
		}
	}
	if views != 14 || tables != 14 {
		t.Errorf("%d views and %d base tables, want 14 and 14", views, tables)
	}
}

// TestNdbinfoTablesAfterStop: the rows of a stopped data node vanish,
// its peers' transporter rows say CONNECTING with no address, and every
// row has as many values as its table has columns. restart_info, which
// the master reports about other nodes, shows node 2's failure.
func TestNdbinfoTablesAfterStop(t *testing.T) {
	c, err := NewCluster(Config{DataNodes: 2, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stop([]int{2}, StopOptions{}); err != nil {
		t.Fatal(err)
	}
	byName := map[string]Table{}
	for _, tb := range NdbinfoTables(c.State(), c.Config()) {
		byName[tb.Name] = tb
		for _, r := range tb.Rows {
			if len(r) != len(tb.Columns) {
				t.Errorf("%s: row %v for columns %v", tb.Name, r, tb.Columns)
			}
			if tb.Name != "ndb$blocks" && tb.Name != "ndb$backup_id" && tb.Name != "ndb$restart_info" && r[0] == 2 {
				t.Errorf("%s has a row of stopped node 2: %v", tb.Name, r)
			}
		}
	}
	if n := len(byName["ndb$nodes"].Rows); n != 1 {
		t.Errorf("%d nodes rows, want 1", n)
	}
	var peer []any
	for _, r := range byName["ndb$transporters"].Rows {
		if r[1] == 2 {
			peer = r
		}
	}
	if peer == nil || peer[2] != connConnecting || peer[3] != "-" {
		t.Errorf("node 1's link to node 2 = %v, want CONNECTING (1) with address -", peer)
	}
	if n := len(byName["ndb$restart_info"].Rows); n != 1 {
		t.Errorf("%d restart_info rows, want node 2's failure", n)
	}
}
