// Package qan is query analytics: the statement digests a MariaDB or MySQL
// server keeps in performance_schema, turned into per-interval deltas of
// the busiest digests (bounded series for the store), and the on-demand
// "what blocks whom" read of a node's transactions, lock waits, metadata
// locks and Galera flow control.
//
// Readers take a Querier, so the caller decides how many connections a
// node gets; nothing here reads a node on its own schedule.
package qan

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// Querier is the part of *sql.DB, *sql.Conn or *sql.Tx the readers use.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Totals are one digest's counters since the server started or the
// summary table was truncated. MariaDB 10.11's
// events_statements_summary_by_digest has no QUERY_SAMPLE_TEXT (MySQL 8
// has): examples come from events_statements_history instead.
type Totals struct {
	Calls         float64
	Seconds       float64 // SUM_TIMER_WAIT, picoseconds in the table
	RowsExamined  float64
	RowsSent      float64
	Errors        float64
	Warnings      float64
	NoIndexUsed   float64 // SUM_NO_INDEX_USED: statements that scanned without an index
	FullScans     float64 // SUM_SELECT_SCAN: full scans of a first table
	TmpDiskTables float64 // SUM_CREATED_TMP_DISK_TABLES
}

// Key names a digest on one node: the summary is kept per schema and
// digest, so the same text in two schemas is two rows.
type Key struct {
	Schema, Digest string
}

// Row is one row of the summary table.
type Row struct {
	Key
	// FirstSeen changes when the row was evicted and created again or the
	// table was truncated: the totals then restarted.
	FirstSeen string
	Totals
}

// digestsQuery reads every digest's counters, not its text: the text is
// large and read only for the few digests shown (textsQuery). The table
// holds at most performance_schema_digests_size rows, which bounds this
// read. The NULL digest (statements counted after the table filled up)
// is left out: it has no text to show.
const digestsQuery = `SELECT @@performance_schema + 0, IFNULL(SCHEMA_NAME, ''), DIGEST, FIRST_SEEN,
 COUNT_STAR, SUM_TIMER_WAIT, SUM_ROWS_EXAMINED, SUM_ROWS_SENT, SUM_ERRORS, SUM_WARNINGS,
 SUM_NO_INDEX_USED, SUM_SELECT_SCAN, SUM_CREATED_TMP_DISK_TABLES
 FROM performance_schema.events_statements_summary_by_digest WHERE DIGEST IS NOT NULL`

// enabledQuery answers when the summary is empty (no row carries the
// flag), which is always the case with performance_schema off.
const enabledQuery = `SELECT @@performance_schema + 0,
 (SELECT ENABLED FROM performance_schema.setup_consumers WHERE NAME = 'statements_digest')`

// ErrDisabled says the node cannot give digests, and why.
type ErrDisabled struct{ Why string }

func (e *ErrDisabled) Error() string { return e.Why }

// ReadDigests reads the summary table in one statement (two when it is
// empty, to tell an idle node from one with performance_schema off). A
// node with performance_schema or the digest consumer off returns
// *ErrDisabled.
func ReadDigests(ctx context.Context, q Querier) ([]Row, error) {
	rows, err := q.QueryContext(ctx, digestsQuery)
	if err != nil {
		return nil, fmt.Errorf("read statement digests: %w", err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var ps int
		var r Row
		var raw [9]sql.RawBytes
		if err := rows.Scan(&ps, &r.Schema, &r.Digest, &r.FirstSeen,
			&raw[0], &raw[1], &raw[2], &raw[3], &raw[4], &raw[5], &raw[6], &raw[7], &raw[8]); err != nil {
			return nil, fmt.Errorf("read statement digests: %w", err)
		}
		var vals [9]float64
		for i, b := range raw {
			if vals[i], err = counter(b); err != nil {
				return nil, fmt.Errorf("read statement digest %s: column %d: %w", r.Digest, i+5, err)
			}
		}
		r.Totals = Totals{Calls: vals[0], Seconds: vals[1] / 1e12, RowsExamined: vals[2], RowsSent: vals[3], Errors: vals[4],
			Warnings: vals[5], NoIndexUsed: vals[6], FullScans: vals[7], TmpDiskTables: vals[8]}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read statement digests: %w", err)
	}
	if len(out) > 0 {
		return out, nil
	}
	var ps int
	var consumer sql.NullString
	if err := scanOne(ctx, q, enabledQuery, &ps, &consumer); err != nil {
		return nil, fmt.Errorf("read performance_schema settings: %w", err)
	}
	switch {
	case ps == 0:
		return nil, &ErrDisabled{Why: "performance_schema is OFF on this node (set performance_schema=ON in its my.cnf and restart it)"}
	case !strings.EqualFold(consumer.String, "YES"):
		return nil, &ErrDisabled{Why: "the statements_digest consumer is off (performance-schema-consumer-statements-digest=ON)"}
	}
	return out, nil
}

func scanOne(ctx context.Context, q Querier, query string, dest ...any) error {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}

// counter parses an unsigned counter column. BIGINT UNSIGNED goes up to
// 2^64-1, past int64; a float keeps the magnitude, which is all a delta
// of picoseconds needs. NULL reads as 0.
func counter(b []byte) (float64, error) {
	if b == nil {
		return 0, nil
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return 0, nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return float64(u), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("not a counter: %q", s)
	}
	return f, nil
}

// Text is what a digest looks like: the normalized statement and, when
// the node still had one in its statement history, an example.
type Text struct {
	Normalized string `json:"text"`
	Example    string `json:"example,omitempty"`
}

// maxText bounds a text kept in memory and sent to the API.
const maxText = 2048

// ReadTexts reads the texts of keys in one statement: the normalized text
// from the summary, and an example from events_statements_history (the
// last statements of each live connection, so a digest nobody ran lately
// has none). Examples that may carry a password are not kept.
func ReadTexts(ctx context.Context, q Querier, keys []Key) (map[Key]Text, error) {
	if len(keys) == 0 {
		return map[Key]Text{}, nil
	}
	digests := make([]string, 0, len(keys))
	args := make([]any, 0, len(keys))
	for _, k := range keys {
		digests = append(digests, "?")
		args = append(args, k.Digest)
	}
	query := `SELECT IFNULL(d.SCHEMA_NAME, ''), d.DIGEST, IFNULL(d.DIGEST_TEXT, ''),
 IFNULL((SELECT h.SQL_TEXT FROM performance_schema.events_statements_history h WHERE h.DIGEST = d.DIGEST ORDER BY h.TIMER_WAIT DESC LIMIT 1), '')
 FROM performance_schema.events_statements_summary_by_digest d WHERE d.DIGEST IN (` + strings.Join(digests, ",") + `)`
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read digest texts: %w", err)
	}
	defer rows.Close()
	out := make(map[Key]Text, len(keys))
	for rows.Next() {
		var k Key
		var t Text
		if err := rows.Scan(&k.Schema, &k.Digest, &t.Normalized, &t.Example); err != nil {
			return nil, fmt.Errorf("read digest texts: %w", err)
		}
		t.Normalized = clip(t.Normalized)
		t.Example = clip(redactExample(t.Example))
		out[k] = t
	}
	return out, rows.Err()
}

// redactExample drops a statement as run (an example, a running
// statement) that may hold a secret: the normalized text has its literals
// replaced, such statements do not.
func redactExample(s string) string {
	u := strings.ToUpper(s)
	for _, w := range []string{"PASSWORD", "IDENTIFIED", "AES_", "ENCRYPT", "DES_"} {
		if strings.Contains(u, w) {
			return ""
		}
	}
	return s
}

func clip(s string) string {
	if len(s) <= maxText {
		return s
	}
	// Cut on a rune boundary.
	cut := maxText
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
