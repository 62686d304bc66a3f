package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nines-project/nines/galera"
	"github.com/nines-project/nines/internal/mariadbd"
)

// Files mariadb-backup puts in its stream that say where the backup stands.
const (
	// xtrabackup_binlog_info: "binlog.000002\t379\t0-1-7", the binary log
	// position and GTID of the backup point.
	binlogInfoFile = "xtrabackup_binlog_info"
	// xtrabackup_galera_info: "uuid:seqno domain", written by --galera-info.
	galeraInfoFile = "xtrabackup_galera_info"
	// blockCommitLine is what mariadb-backup logs once it holds BACKUP
	// STAGE BLOCK_COMMIT: from then until it logs "Finishing BACKUP STAGE
	// BLOCK_COMMIT" (about a second, it stops its redo log copier in
	// between) no transaction commits, and that state is the backup's.
	blockCommitLine = "Acquired locks for BACKUP STAGE BLOCK_COMMIT"
)

// runMariabackup streams `mariadb-backup --backup --stream=mbstream`
// through gzip into target/backup.mbstream.gz. Nothing is staged on disk:
// the stream is compressed as it comes, and the two small position files
// are picked out of it on the way (xbCapture), so the disk cost is the
// compressed backup alone.
//
// The verification facts are read in a consistent snapshot opened when
// mariadb-backup reports it holds BLOCK_COMMIT, so the snapshot sees
// exactly the commits the backup holds. The snapshot's GTID position is
// then compared with the backup's: equal means proven (FactsExact).
// If the line is missed, the snapshot is opened when the backup ends, the
// nearest point after it.
func (a *Agent) runMariabackup(ctx context.Context, db *sql.DB, bin, target string, desync bool, m *Manifest) (err error) {
	if desync {
		if err := setDesync(ctx, db); err != nil {
			return err
		}
		m.Desynced = true
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			if _, derr := db.ExecContext(cctx, "SET GLOBAL wsrep_desync=OFF"); derr != nil {
				err = joinErr(err, fmt.Errorf("SET GLOBAL wsrep_desync=OFF failed; the node stays desynced until it is set: %w", derr))
			}
		}()
	}
	facts, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect for the source facts: %w", err)
	}
	defer facts.Close()

	// --target-dir is where mariadb-backup keeps its own small files
	// while it streams.
	tmp := filepath.Join(target, ".mariadb-backup-tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	out, err := createCompressed(filepath.Join(target, MariabackupFile))
	if err != nil {
		return err
	}
	capture := newXBCapture(binlogInfoFile, galeraInfoFile)
	blockCommit := make(chan struct{})
	var once sync.Once
	stderr := &stderrTail{onLine: func(line string) {
		if strings.Contains(line, blockCommitLine) {
			once.Do(func() { close(blockCommit) })
		}
	}}
	args := []string{
		"--defaults-file=" + a.srv.DefaultsFile, "--backup", "--stream=mbstream", "--target-dir=" + tmp,
		"--user=" + mariadbd.SocketUser(), "--socket=" + a.srv.Socket,
	}
	if a.cfg.IsGalera() {
		args = append(args, "--galera-info")
	}
	cmd := command(ctx, bin, args, nil, io.MultiWriter(out, capture), stderr)
	cmd.Dir = tmp

	type factsResult struct {
		f      sourceFacts
		during bool
		err    error
	}
	done := make(chan struct{})
	factsc := make(chan factsResult, 1)
	fctx, cancelFacts := context.WithCancel(ctx)
	defer cancelFacts()
	go func() {
		ctx := fctx
		var r factsResult
		select {
		case <-blockCommit:
			r.during = true
		case <-done:
		case <-ctx.Done():
			r.err = ctx.Err()
			factsc <- r
			return
		}
		r.f, r.err = beginSourceFacts(ctx, facts)
		if r.err == nil {
			r.err = r.f.finish(ctx, facts)
		}
		factsc <- r
	}()
	start := a.now()
	runErr := runStep("mariadb-backup", cmd, stderr)
	close(done)
	if runErr != nil {
		cancelFacts()
		<-factsc
		out.abort()
		return runErr
	}
	fr := <-factsc
	file, err := out.finish()
	if err != nil {
		return fmt.Errorf("write %s: %w", MariabackupFile, err)
	}
	m.Files = []BackupFile{file}
	files, err := capture.result()
	if err != nil {
		return fmt.Errorf("read the backup position from the stream: %w", err)
	}
	if b, ok := files[binlogInfoFile]; ok {
		pos, gtid, err := parseBinlogInfo(b)
		if err != nil {
			return err
		}
		m.BinlogFile, m.BinlogPos, m.GTID = pos.File, pos.Pos, gtid
	}
	if a.cfg.IsGalera() {
		b, ok := files[galeraInfoFile]
		if !ok {
			return fmt.Errorf("no %s in the stream of a Galera server (is wsrep on?)", galeraInfoFile)
		}
		p, err := parseGaleraInfo(b)
		if err != nil {
			return err
		}
		m.Galera = &p
	}
	if fr.err != nil {
		return fmt.Errorf("read the source facts: %w", fr.err)
	}
	m.Tables, m.RowCounts = fr.f.Tables, fr.f.RowCounts
	m.FactsExact = fr.f.matches(binlogPos{File: m.BinlogFile, Pos: m.BinlogPos}, m.GTID)
	a.log.Info("backup streamed", "id", m.ID, "method", m.Method, "bytes", file.Size, "took", a.now().Sub(start).Round(time.Millisecond),
		"facts_at", fr.f.At.String(), "facts_gtid", fr.f.GTID, "facts_during_commit_block", fr.during, "facts_exact", m.FactsExact)
	return nil
}

// setDesync sets wsrep_desync ON, refusing when it already is: then
// someone else desynced the node, and turning it OFF afterwards would undo
// their work.
func setDesync(ctx context.Context, db *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, sqlTimeout)
	defer cancel()
	var on bool
	if err := db.QueryRowContext(ctx, "SELECT @@wsrep_desync").Scan(&on); err != nil {
		return fmt.Errorf("read wsrep_desync: %w", err)
	}
	if on {
		return conflict(errors.New("backup refused: wsrep_desync is already ON (someone else desynced the node)"))
	}
	if _, err := db.ExecContext(ctx, "SET GLOBAL wsrep_desync=ON"); err != nil {
		return fmt.Errorf("SET GLOBAL wsrep_desync=ON: %w", err)
	}
	return nil
}

// parseBinlogInfo reads xtrabackup_binlog_info: file, position and, when
// the server has one, the GTID position.
func parseBinlogInfo(b []byte) (binlogPos, string, error) {
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return binlogPos{}, "", fmt.Errorf("%s: %q is not \"file position [gtid]\"", binlogInfoFile, b)
	}
	pos, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return binlogPos{}, "", fmt.Errorf("%s: position %q: %w", binlogInfoFile, f[1], err)
	}
	gtid := ""
	if len(f) > 2 {
		gtid = f[2]
	}
	return binlogPos{File: f[0], Pos: pos}, gtid, nil
}

// parseGaleraInfo reads xtrabackup_galera_info: "uuid:seqno" and, after a
// space, the GTID domain.
func parseGaleraInfo(b []byte) (galera.Position, error) {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return galera.Position{}, fmt.Errorf("%s is empty", galeraInfoFile)
	}
	p, err := galera.ParsePosition(f[0])
	if err != nil {
		return galera.Position{}, fmt.Errorf("%s: %w", galeraInfoFile, err)
	}
	if !p.Known() {
		return galera.Position{}, fmt.Errorf("%s: %s is not a committed position", galeraInfoFile, p)
	}
	// The manifest records uuid:seqno only, as before.
	return galera.Position{UUID: p.UUID, Seqno: p.Seqno}, nil
}
