package ndb

// ndbinfo.go reads an SQL node's ndbinfo views (facts A.1.1) in one
// round and turns them into mysqld_exporter ndbinfo-fork metrics (A.5).
// One file per view follows (ndbinfo_<view>.go), each with its query,
// its row type, its parser and its metrics.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/nines-project/nines/internal/metric"
)

// Querier is the part of *sql.DB, *sql.Conn or *sql.Tx the readers use.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Ndbinfo is one read of an SQL node's ndbinfo. A view that could not be
// read, or held a value nines cannot interpret, has an entry in Errors;
// what did parse is kept, and an uninterpretable state is kept as an
// explicit unknown (its metric -1), never dropped or taken for a state.
type Ndbinfo struct {
	Nodes        []NodeRow
	Memory       []MemoryRow
	LogSpaces    []LogRow
	LogBuffers   []LogRow
	Transporters []TransporterRow
	Resources    []ResourceRow
	Membership   []MembershipRow
	Counters     []CounterRow
	// BackupID is the most recently started backup, 0 if none; nil when
	// backup_id could not be read.
	BackupID *uint64
	Errors   []error // each a *ViewError
}

// ViewError is a failed or odd read of one ndbinfo view.
type ViewError struct {
	View string // e.g. "nodes"
	Err  error
}

func (e *ViewError) Error() string { return "ndbinfo." + e.View + ": " + e.Err.Error() }
func (e *ViewError) Unwrap() error { return e.Err }

// ErrBadValue is wrapped by every error about a value: a NULL, a
// negative or non-numeric number, a state name nines does not know.
var ErrBadValue = errors.New("unexpected value")

// Failed reports whether view had an error in this read.
func (n *Ndbinfo) Failed(view string) bool {
	for _, err := range n.Errors {
		var ve *ViewError
		if errors.As(err, &ve) && ve.View == view {
			return true
		}
	}
	return false
}

// Views are the views ReadNdbinfo reads, in order.
var Views = []string{"nodes", "memoryusage", "logspaces", "logbuffers", "transporters", "resources", "membership", "counters", "backup_id"}

// ReadNdbinfo reads every view of Views, one statement each. A view's
// failure is recorded and the others are still read.
func ReadNdbinfo(ctx context.Context, q Querier) *Ndbinfo {
	n := &Ndbinfo{}
	readers := []func(context.Context, Querier, *Ndbinfo) error{
		readNodes, readMemoryUsage, readLogSpaces, readLogBuffers, readTransporters, readResources, readMembership, readCounters, readBackupID,
	}
	for i, read := range readers {
		err := read(ctx, q, n)
		if err == nil {
			continue
		}
		// One error per bad value, each naming its view.
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			n.Errors = append(n.Errors, &ViewError{View: Views[i], Err: e})
		}
	}
	return n
}

// Metrics adds the mysql_ndbinfo_* series of a read, and
// nines_ndbinfo_view_success per view so a failed view is seen rather
// than its series silently missing.
func Metrics(set *metric.Set, n *Ndbinfo) {
	if n == nil {
		return
	}
	for _, v := range Views {
		ok := 1.0
		if n.Failed(v) {
			ok = 0
		}
		set.Add("nines_ndbinfo_view_success", "1 when the ndbinfo view was read and every value in it parsed.", metric.Gauge, ok, "view", v)
	}
	nodesMetrics(set, n.Nodes)
	memoryUsageMetrics(set, n.Memory)
	logMetrics(set, "logspaces", n.LogSpaces)
	logMetrics(set, "logbuffers", n.LogBuffers)
	transportersMetrics(set, n.Transporters)
	resourcesMetrics(set, n.Resources)
	membershipMetrics(set, n.Membership)
	countersMetrics(set, n.Counters)
	if n.BackupID != nil {
		// The fork's name (its ndbinfo_backup_id.go).
		set.Add("mysql_ndbinfo_last_backup_id", "Id of the most recently started native backup (ndbinfo.backup_id), 0 if none.", metric.Gauge, float64(*n.BackupID))
	}
}

// scan runs query and hands each row's cells to parse. A row whose
// values do not parse is reported by parse through c.err; the first such
// error is returned after every row was read.
func scan(ctx context.Context, q Querier, query string, parse func(c *cells)) error {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	var errs []error
	row := 0
	for rows.Next() {
		row++
		c := &cells{row: row, cols: cols, vals: make([]sql.NullString, len(cols))}
		ptrs := make([]any, len(cols))
		for i := range c.vals {
			ptrs[i] = &c.vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		parse(c)
		errs = append(errs, c.errs...)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// cells is one row being parsed, by column name. Every accessor records
// a precise error (row number, column, value) for a value it cannot
// take, and returns the zero value.
type cells struct {
	row  int
	cols []string
	vals []sql.NullString
	errs []error
}

func (c *cells) fail(col, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("row %d column %s: "+format+": %w", append([]any{c.row, col}, append(args, ErrBadValue)...)...))
}

func (c *cells) get(col string) (string, bool) {
	for i, name := range c.cols {
		if name == col {
			if !c.vals[i].Valid {
				c.fail(col, "NULL")
				return "", false
			}
			return c.vals[i].String, true
		}
	}
	c.fail(col, "no such column")
	return "", false
}

// str reads a string column; NULL is an error.
func (c *cells) str(col string) string {
	s, _ := c.get(col)
	return s
}

// uint reads an unsigned integer column. DECIMAL sums ("123" or
// "123.0") are accepted when integral; negatives are errors.
func (c *cells) uint(col string) uint64 {
	s, ok := c.get(col)
	if !ok {
		return 0
	}
	if v, err := strconv.ParseUint(s, 10, 64); err == nil {
		return v
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f != math.Trunc(f) || f > math.MaxUint64 {
		c.fail(col, "%q is not an unsigned integer", s)
		return 0
	}
	return uint64(f)
}

// id reads a node id column (1..255 in NDB); the row is of no use
// without it, so ok is false when it is bad.
func (c *cells) id(col string) (int, bool) {
	n := len(c.errs)
	v := c.uint(col)
	if len(c.errs) > n {
		return 0, false
	}
	if v == 0 || v > 255 {
		c.fail(col, "node id %d outside 1..255", v)
		return 0, false
	}
	return int(v), true
}

// enum finds s in names (a view's CASE strings); -1 and an error when
// absent, the explicit unknown.
func (c *cells) enum(col string, names []string) int {
	s, ok := c.get(col)
	if !ok {
		return -1
	}
	for i, n := range names {
		if n == s {
			return i
		}
	}
	c.fail(col, "unknown value %q (known: %s)", s, strings.Join(names, ", "))
	return -1
}

func itoa(i int) string { return strconv.Itoa(i) }
