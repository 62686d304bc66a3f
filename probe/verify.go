package probe

import (
	"context"
	"database/sql"
	"fmt"
)

const verifySQL = `SELECT seq FROM nines.probe_log
WHERE source = ? AND endpoint = ? AND seq BETWEEN ? AND ? ORDER BY seq`

// VerifyNoLoss lists the seqs from from to to (both included) that are
// missing from nines.probe_log for source and endpoint, as read through
// db. Pass the range from Prober.AcknowledgedSeqs: every seq in it was
// acknowledged, so each one missing is an acknowledged write the cluster
// lost. Rows are kept for a day, so the range must be younger than that.
//
// On a Galera node outside the Primary component reads fail with ERROR
// 1047 unless the session sets wsrep_dirty_reads=ON; a drill reading a
// survivor should open db that way.
func VerifyNoLoss(ctx context.Context, db *sql.DB, source, endpoint string, from, to uint64) (missing []uint64, err error) {
	if from == 0 || to < from {
		return nil, fmt.Errorf("verify probe log of %q via %q: empty seq range %d..%d", source, endpoint, from, to)
	}
	rows, err := db.QueryContext(ctx, verifySQL, source, endpoint, from, to)
	if err != nil {
		return nil, fmt.Errorf("verify probe log of %q via %q: %w", source, endpoint, err)
	}
	defer rows.Close()
	want := from
	for rows.Next() {
		var seq uint64
		if err := rows.Scan(&seq); err != nil {
			return nil, fmt.Errorf("verify probe log of %q via %q: %w", source, endpoint, err)
		}
		for ; want < seq; want++ {
			missing = append(missing, want)
		}
		want = seq + 1
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("verify probe log of %q via %q: %w", source, endpoint, err)
	}
	for ; want <= to && want != 0; want++ {
		missing = append(missing, want)
	}
	return missing, nil
}
