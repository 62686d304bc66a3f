package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nines-project/nines/replication"
)

// DivergedRequest is POST /v1/replication/diverged: list the GTIDs of
// this server's binary logs that Than (another server's
// gtid_binlog_state, the primary's) does not hold. gtid_binlog_state
// keeps each server's last GTID only, so the exact list of what a
// diverged node would lose is in its binary logs.
type DivergedRequest struct {
	Than string `json:"than"`
	// Limit bounds the GTIDs listed (default and most 1000); Count still
	// counts them all.
	Limit int `json:"limit,omitempty"`
}

// DivergedResult is the GTIDs found, in log order; past Limit the
// newest are kept.
type DivergedResult struct {
	GTIDs []string `json:"gtids"`
	Count int      `json:"count"`
	// Files are the binary logs read (from the newest back to the first
	// whose starting state Than covers).
	Files  []string `json:"files"`
	TookMs int64    `json:"took_ms"`
}

const (
	maxDivergedList = 1000
	// divergedScanTimeout bounds the reading of the binary logs: a huge
	// log is a reason to fall back to ranges, not to hang a runbook.
	divergedScanTimeout = 30 * time.Second
)

var (
	gtidEventInfo = regexp.MustCompile(`GTID ([0-9]+-[0-9]+-[0-9]+)`)
	gtidListInfo  = regexp.MustCompile(`^\[(.*)\]$`)
)

func (a *Agent) diverged(ctx context.Context, req DivergedRequest) (DivergedResult, error) {
	start := a.now()
	var res DivergedResult
	than, err := replication.ParseState(req.Than)
	if err != nil {
		return res, badRequest(fmt.Errorf("than: %w", err))
	}
	limit := req.Limit
	if limit <= 0 || limit > maxDivergedList {
		limit = maxDivergedList
	}
	err = a.withSQL(ctx, func(ctx context.Context, db *sql.DB) error {
		files, err := binaryLogs(ctx, db)
		if err != nil {
			return err
		}
		for i := len(files) - 1; i >= 0; i-- {
			res.Files = append(res.Files, files[i])
			startState, gtids, err := scanBinlog(ctx, db, files[i])
			if err != nil {
				return err
			}
			var found []string
			for _, g := range gtids {
				st, _ := replication.ParseState(g)
				if len(st.Lacking(than)) > 0 {
					found = append(found, g)
				}
			}
			res.Count += len(found)
			// Newest file first, log order within: prepend this file's.
			res.GTIDs = append(found, res.GTIDs...)
			// Everything before this file is at or below its starting
			// state, per stream: covered when that state is.
			if than.Covers(startState) {
				break
			}
		}
		return nil
	}, divergedScanTimeout)
	if len(res.GTIDs) > limit {
		res.GTIDs = res.GTIDs[len(res.GTIDs)-limit:]
	}
	res.TookMs = a.now().Sub(start).Milliseconds()
	return res, err
}

func binaryLogs(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, fmt.Errorf("SHOW BINARY LOGS: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var files []string
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		files = append(files, string(vals[0]))
	}
	return files, rows.Err()
}

// scanBinlog reads one binary log's events: its starting GTID state (the
// Gtid_list event) and every transaction's GTID.
func scanBinlog(ctx context.Context, db *sql.DB, file string) (replication.State, []string, error) {
	if strings.ContainsAny(file, "'\\") {
		return nil, nil, fmt.Errorf("binary log name %q", file)
	}
	rows, err := db.QueryContext(ctx, "SHOW BINLOG EVENTS IN '"+file+"'")
	if err != nil {
		return nil, nil, fmt.Errorf("SHOW BINLOG EVENTS IN '%s': %w", file, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	typ, info := -1, -1
	for i, c := range cols {
		switch c {
		case "Event_type":
			typ = i
		case "Info":
			info = i
		}
	}
	if typ < 0 || info < 0 {
		return nil, nil, errors.New("SHOW BINLOG EVENTS: no Event_type or Info column")
	}
	var startState replication.State
	var gtids []string
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		switch string(vals[typ]) {
		case "Gtid_list":
			if startState == nil {
				m := gtidListInfo.FindSubmatch(vals[info])
				if m == nil {
					return nil, nil, fmt.Errorf("%s: Gtid_list %q", file, vals[info])
				}
				if startState, err = replication.ParseState(string(m[1])); err != nil {
					return nil, nil, fmt.Errorf("%s: Gtid_list: %w", file, err)
				}
			}
		case "Gtid":
			if m := gtidEventInfo.FindSubmatch(vals[info]); m != nil {
				gtids = append(gtids, string(m[1]))
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("SHOW BINLOG EVENTS IN '%s': %w", file, err)
	}
	if startState == nil {
		startState = replication.State{}
	}
	return startState, gtids, nil
}
