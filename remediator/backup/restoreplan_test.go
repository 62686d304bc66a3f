package backup

import (
	"github.com/nines-project/nines/galera"

	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines"
)

func TestRestorePlan(t *testing.T) {
	mb := Entry{Source: "db2:3306", Info: Info{State: StateComplete, Holder: "db2:3306", Dir: "/var/backups/nines", Manifest: Manifest{
		ID: "20261126T030000Z-mariabackup-db2-3306", Method: MethodMariabackup, StartedAt: time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC), SizeBytes: 3 << 20,
		Files:  []File{{Name: "backup.mbstream.gz", Size: 3 << 20, SHA256: "ab12"}},
		Galera: &galera.Position{UUID: "6f5c2a34-aaaa-11ef-8000-000000000001", Seqno: 4242}, GTID: "0-1-4242"}}}
	var b strings.Builder
	if err := WriteRestorePlan(&b, nines.KindGalera, "billing", mb); err != nil {
		t.Fatal(err)
	}
	plan := b.String()
	for _, want := range []string{
		"BACKUP=/var/backups/nines/20261126T030000Z-mariabackup-db2-3306",
		`echo "ab12  $BACKUP/backup.mbstream.gz" | sha256sum -c -`,
		"/v1/stop",
		`mv "$DATADIR" "$DATADIR.before-20261126T030000Z-mariabackup-db2-3306"`,
		`gzip -dc "$BACKUP/backup.mbstream.gz" | mbstream -x -C "$RESTORE"`,
		"mariadb-backup --prepare",
		"mariadb-backup --copy-back",
		`chown -R mysql:mysql "$DATADIR"`,
		`uuid:    6f5c2a34-aaaa-11ef-8000-000000000001\nseqno:   4242\nsafe_to_bootstrap: 0`,
		`"position":"6f5c2a34-aaaa-11ef-8000-000000000001:4242"`,
		"never with --wsrep-new-cluster while other nodes run",
		"not verified",
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("mariabackup plan lacks %q:\n%s", want, plan)
		}
	}

	dump := mb
	dump.Method, dump.ID, dump.Galera = MethodDump, "d1", nil
	dump.Files = []File{{Name: "dump.sql.gz", SHA256: "cd34"}}
	dump.Verification = &Verified{OK: true, RestoreSeconds: 2.5, Job: "j1"}
	b.Reset()
	if err := WriteRestorePlan(&b, nines.KindGalera, "billing", dump); err != nil {
		t.Fatal(err)
	}
	plan = b.String()
	for _, want := range []string{"restored in 2.5 s", "--wsrep-on=OFF", `gzip -dc "$BACKUP/dump.sql.gz" | mariadb --socket="$RESTORE/mysqld.sock"`, "never straight into a running cluster node"} {
		if !strings.Contains(plan, want) {
			t.Errorf("dump plan lacks %q:\n%s", want, plan)
		}
	}

	inc := mb
	inc.State = StateIncomplete
	if err := WriteRestorePlan(&strings.Builder{}, nines.KindGalera, "billing", inc); err == nil {
		t.Error("a plan for an incomplete backup")
	}
}
