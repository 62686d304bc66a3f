package qan

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Blocking is what blocks whom on one node right now.
type Blocking struct {
	// PerformanceSchema is false when it is off: metadata locks and the
	// holders' earlier statements are then unknown, not absent.
	PerformanceSchema bool           `json:"performance_schema"`
	Transactions      []Transaction  `json:"transactions"`
	LockWaits         []LockWait     `json:"lock_waits"`
	MetadataLocks     []MetadataLock `json:"metadata_locks"`
	// Galera is nil on a node without wsrep.
	Galera *FlowControl `json:"galera,omitempty"`
}

// Transaction is an open InnoDB transaction, oldest first.
type Transaction struct {
	ID           int64   `json:"id"` // the connection (processlist) id
	State        string  `json:"state"`
	AgeSeconds   float64 `json:"age_seconds"`
	RowsLocked   int64   `json:"rows_locked"`
	RowsModified int64   `json:"rows_modified"`
	User         string  `json:"user"`
	Host         string  `json:"host"`
	DB           string  `json:"db"`
	// Statement runs now; empty while the connection sits idle inside
	// its transaction (the usual culprit).
	Statement string `json:"statement"`
}

// LockWait is one transaction waiting for a row lock another holds.
type LockWait struct {
	WaitingID        int64   `json:"waiting_id"`
	WaitingStatement string  `json:"waiting_statement"`
	WaitSeconds      float64 `json:"wait_seconds"`
	BlockingID       int64   `json:"blocking_id"`
	// BlockingStatement runs now on the holder (often none: it is idle
	// in its transaction); BlockingRecent are its last statements, newest
	// first, from performance_schema, which tell what took the lock.
	BlockingStatement string   `json:"blocking_statement"`
	BlockingRecent    []string `json:"blocking_recent_statements"`
	Table             string   `json:"table"`
	Index             string   `json:"index"`
	Mode              string   `json:"mode"`
}

// MetadataLock is a table metadata lock on an object somebody waits for:
// the PENDING ones wait, the GRANTED ones hold.
type MetadataLock struct {
	ID        int64   `json:"id"`
	Schema    string  `json:"schema"`
	Name      string  `json:"name"`
	LockType  string  `json:"lock_type"`
	Status    string  `json:"status"`
	Statement string  `json:"statement"`
	Seconds   float64 `json:"seconds"` // how long the connection has been in its current state
}

// FlowControl is a Galera node's part in replication stalls. Conflicts
// per table are not known: MariaDB counts certification failures and
// brute-force aborts per node only (the tables appear in the error log
// with wsrep_log_conflicts=ON).
type FlowControl struct {
	Sent          float64 `json:"flow_control_sent"`
	Received      float64 `json:"flow_control_recv"`
	PausedSeconds float64 `json:"flow_control_paused_seconds"` // since the server started
	PausedRatio   float64 `json:"flow_control_paused"`         // since the last FLUSH STATUS
	RecvQueue     float64 `json:"recv_queue"`
	RecvQueueAvg  float64 `json:"recv_queue_avg"`
	CertFailures  float64 `json:"cert_failures"`
	BFAborts      float64 `json:"bf_aborts"`
}

// BlockingLimit bounds each list of one node's answer.
const BlockingLimit = 50

// blockingQuery is the whole read in one statement, one JSON document.
// INNODB_TRX keeps trx_started and trx_wait_started in whole seconds, so
// ages and waits may read up to a second long, never short.
// Its cost on the node is one round trip over in-memory tables. The
// performance_schema parts come back empty when it is off.
var blockingQuery = `SELECT JSON_OBJECT(
 'performance_schema', @@performance_schema + 0,
 'transactions', (SELECT JSON_ARRAYAGG(JSON_OBJECT('id', t.trx_mysql_thread_id, 'state', t.trx_state,
     'age_seconds', TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)) / 1e6, 'rows_locked', t.trx_rows_locked,
     'rows_modified', t.trx_rows_modified, 'user', p.USER, 'host', p.HOST, 'db', p.DB, 'statement', t.trx_query)
     ORDER BY t.trx_started LIMIT ` + strconv.Itoa(BlockingLimit) + `)
   FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id),
 'lock_waits', (SELECT JSON_ARRAYAGG(JSON_OBJECT(
     'waiting_id', r.trx_mysql_thread_id, 'waiting_statement', r.trx_query,
     'wait_seconds', TIMESTAMPDIFF(MICROSECOND, r.trx_wait_started, NOW(6)) / 1e6,
     'blocking_id', b.trx_mysql_thread_id, 'blocking_statement', b.trx_query,
     'blocking_recent_statements', (SELECT JSON_ARRAYAGG(h.SQL_TEXT ORDER BY h.EVENT_ID DESC LIMIT 5)
        FROM performance_schema.threads th JOIN performance_schema.events_statements_history h ON h.THREAD_ID = th.THREAD_ID
        WHERE th.PROCESSLIST_ID = b.trx_mysql_thread_id),
     'table', l.lock_table, 'index', l.lock_index, 'mode', l.lock_mode) ORDER BY r.trx_wait_started LIMIT ` + strconv.Itoa(BlockingLimit) + `)
   FROM information_schema.INNODB_LOCK_WAITS w
   JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id
   JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id
   LEFT JOIN information_schema.INNODB_LOCKS l ON l.lock_id = w.requested_lock_id),
 'metadata_locks', (SELECT JSON_ARRAYAGG(JSON_OBJECT('id', th.PROCESSLIST_ID, 'schema', m.OBJECT_SCHEMA, 'name', m.OBJECT_NAME,
     'lock_type', m.LOCK_TYPE, 'status', m.LOCK_STATUS, 'statement', c.SQL_TEXT, 'seconds', th.PROCESSLIST_TIME) LIMIT ` + strconv.Itoa(BlockingLimit) + `)
   FROM performance_schema.metadata_locks m
   JOIN performance_schema.threads th ON th.THREAD_ID = m.OWNER_THREAD_ID
   LEFT JOIN performance_schema.events_statements_current c ON c.THREAD_ID = m.OWNER_THREAD_ID
   WHERE m.OBJECT_TYPE = 'TABLE' AND EXISTS (SELECT 1 FROM performance_schema.metadata_locks p
     WHERE p.LOCK_STATUS = 'PENDING' AND p.OBJECT_SCHEMA <=> m.OBJECT_SCHEMA AND p.OBJECT_NAME <=> m.OBJECT_NAME)),
 'status', (SELECT JSON_OBJECTAGG(LOWER(VARIABLE_NAME), VARIABLE_VALUE) FROM information_schema.GLOBAL_STATUS
   WHERE VARIABLE_NAME IN ('WSREP_FLOW_CONTROL_SENT', 'WSREP_FLOW_CONTROL_RECV', 'WSREP_FLOW_CONTROL_PAUSED',
     'WSREP_FLOW_CONTROL_PAUSED_NS', 'WSREP_LOCAL_RECV_QUEUE', 'WSREP_LOCAL_RECV_QUEUE_AVG', 'WSREP_LOCAL_CERT_FAILURES', 'WSREP_LOCAL_BF_ABORTS')))`

// ReadBlocking reads what blocks whom on one node in one statement; ctx
// bounds it.
func ReadBlocking(ctx context.Context, q Querier) (*Blocking, error) {
	var doc []byte
	if err := scanOne(ctx, q, blockingQuery, &doc); err != nil {
		return nil, fmt.Errorf("read transactions and locks: %w", err)
	}
	return ParseBlocking(doc)
}

// rawBlocking is the statement's document as MariaDB writes it: numbers
// may come as strings (status values), lists as null when empty.
type rawBlocking struct {
	PerformanceSchema json.Number    `json:"performance_schema"`
	Transactions      []rawObject    `json:"transactions"`
	LockWaits         []rawObject    `json:"lock_waits"`
	MetadataLocks     []rawObject    `json:"metadata_locks"`
	Status            map[string]any `json:"status"`
}

type rawObject map[string]any

func (o rawObject) str(k string) string {
	switch v := o[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func (o rawObject) num(k string) float64 { return number(o[k]) }

func number(v any) float64 {
	switch v := v.(type) {
	case json.Number:
		f, _ := v.Float64()
		return f
	case string:
		f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return f
	case bool:
		if v {
			return 1
		}
	}
	return 0
}

func (o rawObject) strs(k string) []string {
	list, _ := o[k].([]any)
	out := make([]string, 0, len(list))
	for _, v := range list {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// hiddenStatement stands for a statement that may carry a password.
const hiddenStatement = "(statement hidden: it may carry a password)"

// stmt is a statement as run, clipped, or hidden when it may carry a
// secret.
func stmt(s string) string {
	if s != "" && redactExample(s) == "" {
		return hiddenStatement
	}
	return clip(s)
}

// ParseBlocking decodes the blocking statement's document.
func ParseBlocking(doc []byte) (*Blocking, error) {
	var raw rawBlocking
	dec := json.NewDecoder(strings.NewReader(string(doc)))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decode transactions and locks: %w", err)
	}
	b := &Blocking{PerformanceSchema: number(raw.PerformanceSchema) == 1,
		Transactions: []Transaction{}, LockWaits: []LockWait{}, MetadataLocks: []MetadataLock{}}
	for _, o := range raw.Transactions {
		b.Transactions = append(b.Transactions, Transaction{ID: int64(o.num("id")), State: o.str("state"), AgeSeconds: o.num("age_seconds"),
			RowsLocked: int64(o.num("rows_locked")), RowsModified: int64(o.num("rows_modified")), User: o.str("user"), Host: o.str("host"),
			DB: o.str("db"), Statement: stmt(o.str("statement"))})
	}
	for _, o := range raw.LockWaits {
		w := LockWait{WaitingID: int64(o.num("waiting_id")), WaitingStatement: stmt(o.str("waiting_statement")), WaitSeconds: o.num("wait_seconds"),
			BlockingID: int64(o.num("blocking_id")), BlockingStatement: stmt(o.str("blocking_statement")), BlockingRecent: []string{},
			Table: o.str("table"), Index: o.str("index"), Mode: o.str("mode")}
		for _, s := range o.strs("blocking_recent_statements") {
			w.BlockingRecent = append(w.BlockingRecent, stmt(s))
		}
		b.LockWaits = append(b.LockWaits, w)
	}
	for _, o := range raw.MetadataLocks {
		b.MetadataLocks = append(b.MetadataLocks, MetadataLock{ID: int64(o.num("id")), Schema: o.str("schema"), Name: o.str("name"),
			LockType: o.str("lock_type"), Status: o.str("status"), Statement: stmt(o.str("statement")), Seconds: o.num("seconds")})
	}
	st := raw.Status
	// The flow control counters exist only with a Galera provider loaded.
	if _, ok := st["wsrep_flow_control_sent"]; ok {
		b.Galera = &FlowControl{Sent: number(st["wsrep_flow_control_sent"]), Received: number(st["wsrep_flow_control_recv"]),
			PausedSeconds: number(st["wsrep_flow_control_paused_ns"]) / 1e9, PausedRatio: number(st["wsrep_flow_control_paused"]),
			RecvQueue: number(st["wsrep_local_recv_queue"]), RecvQueueAvg: number(st["wsrep_local_recv_queue_avg"]),
			CertFailures: number(st["wsrep_local_cert_failures"]), BFAborts: number(st["wsrep_local_bf_aborts"])}
	}
	return b, nil
}
