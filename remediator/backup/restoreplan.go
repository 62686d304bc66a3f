package backup

import (
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/nines-project/nines"
)

// WriteRestorePlan writes the manual steps to restore backup e of a
// cluster of kind onto one node. nines never restores by itself: a
// restore replaces a node's data, and only an operator who knows why the
// data is needed may decide that. The plan names every path and position
// from the manifest, so it can be followed as written.
func WriteRestorePlan(w io.Writer, kind nines.Kind, cluster string, e Entry) error {
	p := &planWriter{w: w}
	backupDir := path.Join(e.Dir, e.ID)
	p.f("Restore plan for backup %s of cluster %s\n", e.ID, cluster)
	p.f("  method %s, taken on %s at %s, %s in %s on the host of %s\n", e.Method, e.Source, e.StartedAt.UTC().Format(time.RFC3339), humanBytes(e.SizeBytes), backupDir, e.Holder)
	if pos := PositionText(e.Galera); pos != "" {
		p.f("  Galera position %s", pos)
		if e.GTID != "" {
			p.f(", GTID %s", e.GTID)
		}
		p.f("\n")
	} else if e.GTID != "" {
		p.f("  GTID %s\n", e.GTID)
	}
	if v := e.Verification; v != nil {
		if v.OK {
			p.f("  verified %s: restored in %.1f s (job %s)\n", v.At.UTC().Format(time.RFC3339), v.RestoreSeconds, v.Job)
		} else {
			p.f("  WARNING: its verification of %s FAILED (%s): restoring it may not work\n", v.At.UTC().Format(time.RFC3339), v.Failure)
		}
	} else {
		p.f("  not verified: consider `nines backup verify --cluster %s --id %s` first\n", cluster, e.ID)
	}
	if !e.Complete() {
		return fmt.Errorf("backup %s is %s: it cannot be restored", e.ID, e.State)
	}
	p.f(`
nines never restores by itself. Run these steps yourself, on the host of
the node you restore, one at a time, reading each first. Lines starting
with $ are commands (run as root); set the variables first.

`)
	p.f("  $ BACKUP=%s\n", backupDir)
	p.f("  $ DATADIR=/var/lib/mysql          # the node's datadir: the agent's GET /v1/status says data_dir\n")
	p.f("  $ RESTORE=/var/tmp/restore-%s     # scratch space, as large as the data\n\n", e.ID)
	p.step("Check the files against the manifest (copy the backup directory to this host first if it is on another one).")
	for _, f := range e.Files {
		p.f("  $ echo \"%s  $BACKUP/%s\" | sha256sum -c -\n", f.SHA256, f.Name)
	}
	switch {
	case e.Method == MethodMariabackup:
		file := fileNamed(e.Files, ".mbstream.gz", "backup.mbstream.gz")
		p.step("Stop the node, and only it. The others keep serving: check first that they form a Primary component without it.")
		p.f("  $ curl -fsS -X POST -H \"Authorization: Bearer $AGENT_TOKEN\" https://<its agent>/v1/stop   # or: systemctl stop mariadb\n")
		p.step("Move its datadir aside (keep it until the node is back and checked), and start from an empty one.")
		p.f("  $ mv \"$DATADIR\" \"$DATADIR.before-%s\" && mkdir \"$DATADIR\"\n", e.ID)
		p.step("Decompress and extract the stream, then prepare it (applies the redo log copied during the backup).")
		p.f("  $ mkdir -p \"$RESTORE\" && gzip -dc \"$BACKUP/%s\" | mbstream -x -C \"$RESTORE\"\n", file)
		p.f("  $ mariadb-backup --prepare --target-dir=\"$RESTORE\"\n")
		p.step("Copy it into the datadir and give it to the server's user.")
		p.f("  $ mariadb-backup --copy-back --target-dir=\"$RESTORE\" --datadir=\"$DATADIR\"\n")
		p.f("  $ chown -R mysql:mysql \"$DATADIR\"\n")
		if kind == nines.KindGalera && e.Galera != nil {
			p.step("Write grastate.dat with the backup's position, so the node asks the cluster only for what it missed since (IST).")
			p.f("  $ printf '# GALERA saved state\\nversion: 2.1\\nuuid:    %s\\nseqno:   %d\\nsafe_to_bootstrap: 0\\n' > \"$DATADIR/grastate.dat\"\n", e.Galera.UUID, e.Galera.Seqno)
			p.f("  $ chown mysql:mysql \"$DATADIR/grastate.dat\"\n")
			p.f("  (IST needs the donor's gcache to still hold the writes after seqno %d; if it does not, the node gets a full SST instead: correct, only slower.)\n", e.Galera.Seqno)
			p.step("Start the node so it JOINS the running cluster (never with --wsrep-new-cluster while other nodes run), and wait until it is Synced.")
			p.f("  $ curl -fsS -X POST -H \"Authorization: Bearer $AGENT_TOKEN\" -d '{\"position\":\"%s\",\"wait\":\"synced\",\"timeout_seconds\":3600}' https://<its agent>/v1/start\n", PositionText(e.Galera))
			p.f("  $ mariadb -e \"SHOW STATUS LIKE 'wsrep_local_state_comment'\"   # Synced\n")
			p.f("  If the whole cluster is to go back to this backup instead (every node lost), start this node alone with --wsrep-new-cluster\n  (safe_to_bootstrap: 1 in grastate.dat), then the others empty, so they copy it by SST; writes after the backup are lost.\n")
		} else {
			p.step("Start the server.")
			p.f("  $ curl -fsS -X POST -H \"Authorization: Bearer $AGENT_TOKEN\" https://<its agent>/v1/start   # or: systemctl start mariadb\n")
			if e.GTID != "" {
				p.step("On a replica: replicate again from the backup's point.")
				p.f("  $ mariadb -e \"STOP SLAVE; SET GLOBAL gtid_slave_pos='%s'; CHANGE MASTER TO MASTER_USE_GTID=slave_pos; START SLAVE;\"\n", e.GTID)
			}
		}
		p.step("Check the data, then remove the old datadir and the scratch copy.")
		p.f("  $ rm -rf \"$DATADIR.before-%s\" \"$RESTORE\"\n", e.ID)
	default: // dump
		file := fileNamed(e.Files, ".sql.gz", "dump.sql.gz")
		p.f("\nA dump is a logical copy of every database at GTID %q: it restores data, not a node.\n", e.GTID)
		p.f("Load it into a server stopped out of the cluster, never straight into a running cluster node.\n")
		p.step("Start a scratch server out of any cluster: its own datadir and port, wsrep and the binary log off.")
		p.f("  $ mkdir -p \"$RESTORE\" && mariadb-install-db --user=mysql --datadir=\"$RESTORE/data\"\n")
		p.f("  $ mariadbd --user=mysql --datadir=\"$RESTORE/data\" --socket=\"$RESTORE/mysqld.sock\" --port=3399 --bind-address=127.0.0.1 \\\n      --wsrep-on=OFF --skip-log-bin --skip-slave-start &\n")
		p.step("Load the dump into it.")
		p.f("  $ gzip -dc \"$BACKUP/%s\" | mariadb --socket=\"$RESTORE/mysqld.sock\" --max-allowed-packet=1G\n", file)
		p.step("Copy back what is needed: the tables you lost, through one node of the running cluster (Galera replicates them).")
		p.f("  $ mariadb-dump --socket=\"$RESTORE/mysqld.sock\" --single-transaction <db> <table...> | mariadb -h <a Synced node> <db>\n")
		p.f("  To take a whole node back to the backup instead, stop it, empty its datadir, install a fresh one, start it with wsrep off,\n  load the dump as above, and seed the cluster from it (it becomes a new history: every other node rejoins by SST).\n")
		p.step("Stop the scratch server and remove it.")
		p.f("  $ mariadb-admin --socket=\"$RESTORE/mysqld.sock\" shutdown && rm -rf \"$RESTORE\"\n")
	}
	return p.err
}

type planWriter struct {
	w   io.Writer
	n   int
	err error
}

func (p *planWriter) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *planWriter) step(what string) {
	p.n++
	p.f("\n%d. %s\n", p.n, what)
}

func fileNamed(files []File, suffix, fallback string) string {
	for _, f := range files {
		if strings.HasSuffix(f.Name, suffix) {
			return f.Name
		}
	}
	return fallback
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// HumanBytes formats a size for people: 1.5 MiB.
func HumanBytes(n int64) string { return humanBytes(n) }
