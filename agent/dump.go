package agent

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/nines-project/nines/internal/mariadbd"
)

// BACKUP STAGE statements that hold DDL and commits off while the dump and
// the facts open their snapshots. Stages may be skipped, not reordered.
var dumpLockSQL = []string{
	"SET SESSION lock_wait_timeout = " + strconv.Itoa(int(backupLockWait.Seconds())),
	"BACKUP STAGE START",
	"BACKUP STAGE BLOCK_DDL",
	"BACKUP STAGE BLOCK_COMMIT",
}

// runDump writes `mariadb-dump --single-transaction --all-databases`
// through gzip into target/dump.sql.gz.
//
// The dump's consistency point is the snapshot mariadb-dump opens; with
// --master-data=2 (servers with a binary log) it writes that snapshot's
// binlog position near the top and, with --gtid, its GTID position
// (gtid_slave_pos) at the very end; both are read from the stream as it
// passes (dumpWatch). The verification facts are made exact by opening
// their own snapshot while commits are blocked: the agent takes BACKUP
// STAGE BLOCK_DDL and BLOCK_COMMIT, opens the facts' snapshot, starts
// mariadb-dump, waits until its output shows it has opened its snapshot
// (the position comment, or the first database, comes only after), and
// ends the stage. No commit can fall between the two snapshots: on
// Galera, BLOCK_DDL also desyncs and pauses the node (MDEV-33211), so
// writesets from other nodes wait as well. Commits are blocked for the
// few milliseconds mariadb-dump takes to start (25 ms measured); the dump
// itself then runs without any lock. The binlog positions of the two
// snapshots are compared as well.
func (a *Agent) runDump(ctx context.Context, db *sql.DB, bin, target string, m *Manifest) (err error) {
	var logBin bool
	qctx, cancel := context.WithTimeout(ctx, sqlTimeout)
	err = db.QueryRowContext(qctx, "SELECT @@log_bin").Scan(&logBin)
	cancel()
	if err != nil {
		return fmt.Errorf("read log_bin: %w", err)
	}
	lock, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect for BACKUP STAGE: %w", err)
	}
	defer lock.Close()
	facts, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect for the source facts: %w", err)
	}
	defer facts.Close()

	for _, q := range dumpLockSQL {
		if _, err := lock.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	locked, lockedAt := true, a.now()
	var lockErr error
	unlock := func() {
		if !locked {
			return
		}
		locked = false
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, err := lock.ExecContext(cctx, "BACKUP STAGE END"); err != nil {
			// Dropping the connection releases the stage too.
			lockErr = fmt.Errorf("BACKUP STAGE END: %w", err)
			_ = lock.Raw(func(any) error { return driver.ErrBadConn })
		}
	}
	defer unlock()
	f, err := beginSourceFacts(ctx, facts)
	if err != nil {
		return fmt.Errorf("read the source facts: %w", err)
	}

	out, err := createCompressed(filepath.Join(target, DumpFile))
	if err != nil {
		return err
	}
	watch := newDumpWatch()
	stderr := &stderrTail{}
	args := []string{
		"--defaults-file=" + a.srv.DefaultsFile, "--user=" + mariadbd.SocketUser(), "--socket=" + a.srv.Socket,
		"--single-transaction", "--routines", "--events", "--triggers", "--all-databases",
	}
	if logBin {
		args = append(args, "--gtid", "--master-data=2")
	}
	cmd := command(ctx, bin, args, nil, io.MultiWriter(out, watch), stderr)
	start := a.now()
	if err := cmd.Start(); err != nil {
		out.abort()
		return &stepError{Step: "mariadb-dump", Err: err}
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var runErr error
	ended, shared := false, false
	timer := time.NewTimer(dumpSnapshotWait)
	select {
	case <-watch.snapshotted:
		shared = true
	case runErr = <-exited:
		ended = true
	case <-timer.C:
	}
	timer.Stop()
	unlock()
	held := a.now().Sub(lockedAt)
	factsErr := f.finish(ctx, facts)
	if !ended {
		runErr = <-exited
	}
	if runErr != nil {
		out.abort()
		return &stepError{Step: "mariadb-dump", Err: runErr, Tail: stderr.Tail()}
	}
	if lockErr != nil {
		out.abort()
		return lockErr
	}
	file, err := out.finish()
	if err != nil {
		return fmt.Errorf("write %s: %w", DumpFile, err)
	}
	m.Files = []BackupFile{file}
	pos, gtid := watch.position()
	if logBin && pos.File == "" {
		return fmt.Errorf("no binlog position in the dump's header (--master-data=2)")
	}
	m.BinlogFile, m.BinlogPos, m.GTID = pos.File, pos.Pos, gtid
	if factsErr != nil {
		return fmt.Errorf("read the source facts: %w", factsErr)
	}
	m.Tables, m.RowCounts = f.Tables, f.RowCounts
	// Exact when mariadb-dump showed its snapshot while commits were
	// blocked, and the binlog positions, where there are any, agree.
	m.FactsExact = shared && (pos.File == "" || f.matches(pos, gtid))
	a.log.Info("backup dumped", "id", m.ID, "bytes", file.Size, "took", a.now().Sub(start).Round(time.Millisecond),
		"commits_blocked", held.Round(time.Microsecond), "facts_at", f.At.String(), "dump_at", pos.String(), "facts_exact", m.FactsExact)
	return nil
}

// dumpWatch reads what it needs from mariadb-dump's output as it passes:
// the first 64 KiB (the header with the binlog position) and the last
// 64 KiB (the deferred gtid_slave_pos). snapshotted closes once the
// output shows that the dump's transaction is open.
type dumpWatch struct {
	head, tail  []byte
	snapshotted chan struct{}
	once        sync.Once
}

const dumpWatchBytes = 64 << 10

// Lines mariadb-dump writes only after its consistent snapshot is open:
// the master-data comments, else the first database.
var dumpSnapshotMarkers = [][]byte{[]byte("\n-- CHANGE MASTER TO "), []byte("\n-- Current Database: ")}

var (
	dumpPosRE  = regexp.MustCompile(`(?m)^-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+);`)
	dumpGTIDRE = regexp.MustCompile(`(?m)^-- SET GLOBAL gtid_slave_pos='([^']*)';`)
)

func newDumpWatch() *dumpWatch { return &dumpWatch{snapshotted: make(chan struct{})} }

func (w *dumpWatch) Write(p []byte) (int, error) {
	if n := dumpWatchBytes - len(w.head); n > 0 {
		w.head = append(w.head, p[:min(n, len(p))]...)
		for _, mk := range dumpSnapshotMarkers {
			if bytes.Contains(w.head, mk) {
				w.once.Do(func() { close(w.snapshotted) })
			}
		}
	} else {
		// 64 KiB of output is past any header: the data flows.
		w.once.Do(func() { close(w.snapshotted) })
	}
	w.tail = append(w.tail, p...)
	if len(w.tail) > 2*dumpWatchBytes {
		w.tail = append(w.tail[:0], w.tail[len(w.tail)-dumpWatchBytes:]...)
	}
	return len(p), nil
}

// position is the binlog position from the header and the GTID position
// from the end; call it after the dump ended.
func (w *dumpWatch) position() (binlogPos, string) {
	var p binlogPos
	if s := dumpPosRE.FindSubmatch(w.head); s != nil {
		p.File = string(s[1])
		p.Pos, _ = strconv.ParseInt(string(s[2]), 10, 64)
	}
	gtid := ""
	if all := dumpGTIDRE.FindAllSubmatch(w.tail, -1); len(all) > 0 {
		gtid = string(all[len(all)-1][1])
	}
	return p, gtid
}
