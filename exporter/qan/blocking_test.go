package qan

import "testing"

// A document as MariaDB 10.11 wrote it for two sessions on one row
// (captured on a real server), with Galera's status as strings.
const lockWaitDoc = `{"performance_schema": 1,
 "transactions": [{"id": 3, "state": "RUNNING", "age_seconds": 4.450978, "rows_locked": 1, "rows_modified": 1, "user": "app", "host": "localhost", "db": null, "statement": null},
   {"id": 5, "state": "LOCK WAIT", "age_seconds": 3.450978, "rows_locked": 1, "rows_modified": 0, "user": "app", "host": "localhost", "db": "shop", "statement": "update t.r set v=v+2 where id=1"}],
 "lock_waits": [{"waiting_id": 5, "waiting_statement": "update t.r set v=v+2 where id=1", "wait_seconds": 3.450978, "blocking_id": 3,
   "blocking_statement": null, "blocking_recent_statements": ["update t.r set v=v+1 where id=1", "begin"], "table": "` + "`t`.`r`" + `", "index": "PRIMARY", "mode": "X"}],
 "metadata_locks": null,
 "status": {"wsrep_flow_control_sent":"7","wsrep_flow_control_recv":"9","wsrep_flow_control_paused":"0.25","wsrep_flow_control_paused_ns":"1500000000",
   "wsrep_local_recv_queue":"3","wsrep_local_recv_queue_avg":"0.5","wsrep_local_cert_failures":"2","wsrep_local_bf_aborts":"1"}}`

func TestParseBlocking(t *testing.T) {
	b, err := ParseBlocking([]byte(lockWaitDoc))
	if err != nil {
		t.Fatal(err)
	}
	if !b.PerformanceSchema || len(b.Transactions) != 2 || len(b.LockWaits) != 1 || len(b.MetadataLocks) != 0 {
		t.Fatalf("parsed %+v", b)
	}
	if tx := b.Transactions[0]; tx.ID != 3 || tx.Statement != "" || tx.DB != "" || tx.AgeSeconds != 4.450978 {
		t.Errorf("idle holder %+v: want id 3, no statement, no db, 4.45 s", tx)
	}
	w := b.LockWaits[0]
	if w.WaitingID != 5 || w.BlockingID != 3 || w.WaitingStatement != "update t.r set v=v+2 where id=1" || w.WaitSeconds != 3.450978 ||
		len(w.BlockingRecent) != 2 || w.BlockingRecent[0] != "update t.r set v=v+1 where id=1" || w.Table != "`t`.`r`" {
		t.Errorf("lock wait %+v", w)
	}
	g := b.Galera
	if g == nil || g.Sent != 7 || g.Received != 9 || g.PausedRatio != 0.25 || g.PausedSeconds != 1.5 || g.RecvQueue != 3 || g.CertFailures != 2 || g.BFAborts != 1 {
		t.Errorf("flow control %+v", g)
	}
}

func TestParseBlockingOddDocuments(t *testing.T) {
	// performance_schema off, not Galera, every list null.
	b, err := ParseBlocking([]byte(`{"performance_schema": 0, "transactions": null, "lock_waits": null, "metadata_locks": null, "status": {"wsrep_local_bf_aborts":"0"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if b.PerformanceSchema || b.Galera != nil || b.Transactions == nil || b.LockWaits == nil || b.MetadataLocks == nil {
		t.Errorf("%+v: want performance_schema false, no Galera, empty (not null) lists", b)
	}
	// Status NULL (no row matched) and values that are no numbers.
	b, err = ParseBlocking([]byte(`{"performance_schema": 1, "transactions": [{"id": "12", "age_seconds": "x"}], "status": null}`))
	if err != nil {
		t.Fatal(err)
	}
	if b.Transactions[0].ID != 12 || b.Transactions[0].AgeSeconds != 0 || b.Galera != nil {
		t.Errorf("%+v", b.Transactions[0])
	}
	if _, err := ParseBlocking([]byte(`{"performance_schema": ON}`)); err == nil {
		t.Error("a document that is no JSON parsed without error")
	}
}

func TestParseBlockingHidesPasswords(t *testing.T) {
	b, err := ParseBlocking([]byte(`{"performance_schema": 1, "transactions": [{"id": 4, "statement": "ALTER USER app IDENTIFIED BY 'hunter2'"}],
 "lock_waits": [{"waiting_statement": "SET PASSWORD FOR x = PASSWORD('s')", "blocking_recent_statements": ["ALTER TABLE t ADD KEY k (v)"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if b.Transactions[0].Statement != hiddenStatement || b.LockWaits[0].WaitingStatement != hiddenStatement {
		t.Errorf("statements with passwords shown: %q, %q", b.Transactions[0].Statement, b.LockWaits[0].WaitingStatement)
	}
	if got := b.LockWaits[0].BlockingRecent[0]; got != "ALTER TABLE t ADD KEY k (v)" {
		t.Errorf("a statement without secret was changed to %q", got)
	}
}
