package ndb

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
)

const backupIDQuery = `SELECT id FROM ndbinfo.backup_id`

// readBackupID: backup_id has exactly one row [A.1.1]; none or several
// is an error.
func readBackupID(ctx context.Context, q Querier, n *Ndbinfo) error {
	var ids []uint64
	err := scan(ctx, q, backupIDQuery, func(c *cells) {
		m := len(c.errs)
		v := c.uint("id")
		if len(c.errs) == m {
			ids = append(ids, v)
		}
	})
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		return fmt.Errorf("%d rows where one was expected: %w", len(ids), ErrBadValue)
	}
	n.BackupID = &ids[0]
	return nil
}

// isUnknownColumn: MySQL error 1054 (ER_BAD_FIELD_ERROR).
func isUnknownColumn(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1054
}
