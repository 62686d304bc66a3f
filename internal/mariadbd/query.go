package mariadbd

import (
	"context"
	"database/sql"
)

// QueryRow runs a statement that returns at most one row (SHOW SLAVE
// STATUS, SHOW MASTER STATUS) and gives its columns by name, NULL as "".
// found is false when there is no row: a server that replicates from
// nobody.
func QueryRow(ctx context.Context, db *sql.DB, q string) (row map[string]string, found bool, err error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, false, err
	}
	if !rows.Next() {
		return nil, false, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, false, err
	}
	out := make(map[string]string, len(cols))
	for i, c := range cols {
		out[c] = vals[i].String
	}
	return out, true, rows.Err()
}
