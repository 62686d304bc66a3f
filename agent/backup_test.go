//go:build cluster

package agent_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/agent"
)

// Ports of the backup test: the node's SQL port 28306 (gcomm 28406, IST
// 28407, SST 28408) and the scratch servers of its verifications.
const (
	backupNodePort   = 28306
	verifyPortBackup = 28311
	verifyPortDump   = 28312
)

// shopData is what the test loads: three schemas of their own (one
// empty), a view, 20,000 rows in the largest table, and a nines schema
// that the facts must leave out.
var shopData = []string{
	"CREATE DATABASE shop",
	"CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, customer INT NOT NULL, note VARCHAR(100), KEY (customer))",
	"INSERT INTO shop.orders (customer, note) SELECT seq % 97, CONCAT('order number ', seq) FROM shop.seq_1_to_20000",
	"CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(50))",
	"INSERT INTO shop.customers SELECT seq, CONCAT('customer ', seq) FROM shop.seq_0_to_96",
	"CREATE VIEW shop.big_customers AS SELECT customer, COUNT(*) AS n FROM shop.orders GROUP BY customer",
	"CREATE DATABASE crm",
	"CREATE TABLE crm.contacts (id INT PRIMARY KEY, email VARCHAR(80))",
	"INSERT INTO crm.contacts SELECT seq, CONCAT('c', seq, '@example.com') FROM crm.seq_1_to_500",
	"CREATE TABLE crm.notes (id INT PRIMARY KEY, body TEXT)",
	"CREATE DATABASE empty_schema",
	"CREATE DATABASE nines",
	"CREATE TABLE nines.probe (id INT PRIMARY KEY, at DATETIME(6))",
	"INSERT INTO nines.probe VALUES (1, NOW(6))",
}

// TestBackupsOfRealServer backs up one real Galera node through its agent
// with both methods, verifies both in scratch servers, detects a
// corrupted file, lists and deletes, and checks the refusals.
func TestBackupsOfRealServer(t *testing.T) {
	n := newNodeAt(t, backupNodePort)
	dir := backupDir(t)
	c := runAgent(t, n, dir)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	timed(t, "bootstrap", func() (agent.StartResult, error) {
		return c.Start(ctx, agent.StartRequest{NewCluster: true, Wait: agent.WaitSynced, TimeoutSeconds: 60})
	})
	db, err := n.srv.DB()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(qs ...string) {
		t.Helper()
		for _, q := range qs {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	exec(shopData...)

	// Physical, desynced for its duration.
	var uuid string
	var committed int64
	if err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'wsrep_cluster_state_uuid'").Scan(new(string), &uuid); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'wsrep_last_committed'").Scan(new(string), &committed); err != nil {
		t.Fatal(err)
	}
	phys := timed(t, "mariabackup backup (desync)", func() (agent.Manifest, error) {
		return c.Backup(ctx, agent.BackupRequest{Method: agent.MethodMariabackup, Dir: dir, ID: "phys-1", Desync: true})
	})
	t.Logf("TIMING mariabackup: %.3f s by the manifest, %d bytes compressed", phys.DurationSeconds, phys.SizeBytes)
	wantFacts := map[string]int64{"shop.orders": 20000, "shop.customers": 97, "crm.contacts": 500, "crm.notes": 0}
	checkManifest(t, dir, phys, agent.MethodMariabackup, agent.MariabackupFile, wantFacts)
	if phys.Galera == nil || phys.Galera.UUID != uuid || phys.Galera.Seqno != committed || !phys.Desynced {
		t.Errorf("mariabackup position: galera %+v desynced %v, want %s:%d desynced", phys.Galera, phys.Desynced, uuid, committed)
	}
	var desync bool
	if err := db.QueryRowContext(ctx, "SELECT @@wsrep_desync").Scan(&desync); err != nil || desync {
		t.Errorf("wsrep_desync after the backup: %v, %v; want OFF", desync, err)
	}

	v := timed(t, "verify mariabackup", func() (agent.VerifyResult, error) {
		return c.VerifyBackup(ctx, "phys-1", agent.VerifyRequest{Dir: dir, Port: verifyPortBackup})
	})
	t.Logf("TIMING verify mariabackup: checksum %.3f s, restore %.3f s, checks %.3f s", v.ChecksumSeconds, v.RestoreSeconds, v.CheckSeconds)
	checkVerified(t, dir, v, verifyPortBackup, wantFacts)

	// Logical, after more writes: its facts and GTID must be newer.
	exec("INSERT INTO shop.orders (customer, note) SELECT seq, 'late' FROM shop.seq_1_to_10")
	wantFacts["shop.orders"] = 20010
	logical := timed(t, "dump backup", func() (agent.Manifest, error) {
		return c.Backup(ctx, agent.BackupRequest{Method: agent.MethodDump, Dir: dir, ID: "dump-1"})
	})
	t.Logf("TIMING dump: %.3f s by the manifest, %d bytes compressed", logical.DurationSeconds, logical.SizeBytes)
	checkManifest(t, dir, logical, agent.MethodDump, agent.DumpFile, wantFacts)
	if logical.Galera != nil || logical.GTID == phys.GTID || logical.Desynced {
		t.Errorf("dump: galera %+v gtid %q (mariabackup's %q) desynced %v", logical.Galera, logical.GTID, phys.GTID, logical.Desynced)
	}
	v = timed(t, "verify dump", func() (agent.VerifyResult, error) {
		return c.VerifyBackup(ctx, "dump-1", agent.VerifyRequest{Dir: dir, Port: verifyPortDump})
	})
	t.Logf("TIMING verify dump: checksum %.3f s, restore %.3f s, checks %.3f s", v.ChecksumSeconds, v.RestoreSeconds, v.CheckSeconds)
	checkVerified(t, dir, v, verifyPortDump, wantFacts)

	// One flipped byte fails the checksum before anything is restored.
	corrupt(t, filepath.Join(dir, "dump-1", agent.DumpFile))
	v, err = c.VerifyBackup(ctx, "dump-1", agent.VerifyRequest{Dir: dir, Port: verifyPortDump})
	if err != nil {
		t.Fatalf("verify a corrupt backup: %v (want a result with ok false)", err)
	}
	if v.OK || len(v.Checks) != 1 || v.Checks[0].Name != "checksum:"+agent.DumpFile || v.Checks[0].OK ||
		!strings.HasPrefix(v.Error, "checksum:dump.sql.gz: dump.sql.gz: sha256 ") || v.RestoreSeconds != 0 {
		t.Errorf("verify a corrupt backup: %+v", v)
	}

	// The listing: newest first; a directory without a manifest is
	// incomplete.
	if err := os.MkdirAll(filepath.Join(dir, "cut-short"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cut-short", agent.MariabackupFile), []byte("partial"), 0o640); err != nil {
		t.Fatal(err)
	}
	// Every backup writes the marker first; DELETE needs it.
	if err := os.WriteFile(filepath.Join(dir, "cut-short", agent.MarkerFile), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	list, err := c.Backups(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := listed(list); got != "cut-short:incomplete:mariabackup dump-1:complete:dump phys-1:complete:mariabackup" {
		t.Errorf("list: %s", got)
	}
	if list[1].GTID != logical.GTID || list[2].SizeBytes != phys.SizeBytes || list[0].SizeBytes != 7 {
		t.Errorf("list entries: %+v", list)
	}

	// Deleting.
	if err := c.DeleteBackup(ctx, dir, "dump-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dump-1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dump-1 after delete: %v", err)
	}
	var ae *agent.Error
	if err := c.DeleteBackup(ctx, dir, "dump-1"); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Errorf("delete a deleted backup: %v", err)
	}
	if err := c.DeleteBackup(ctx, dir, "phys-1/x"); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Errorf("delete with a path separator: %v", err)
	}
	if err := c.DeleteBackup(ctx, dir, "cut-short"); err != nil {
		t.Fatal(err)
	}
	if list, err := c.Backups(ctx, dir); err != nil || listed(list) != "phys-1:complete:mariabackup" {
		t.Errorf("list after deletes: %s, %v", listed(list), err)
	}

	// Under a steady stream of writes (and of probe writes to nines),
	// the facts are still the backup's own, so both verify. Meanwhile:
	// one backup at a time, and no stop under a backup.
	stopWriting := writeSteadily(t, n)
	done := make(chan error, 1)
	var busy agent.Manifest
	go func() {
		var err error
		busy, err = c.Backup(ctx, agent.BackupRequest{Method: agent.MethodMariabackup, Dir: dir, ID: "phys-2"})
		done <- err
	}()
	waitMetric(t, c, "nines_agent_backup_running 1")
	_, err = c.Backup(ctx, agent.BackupRequest{Method: agent.MethodDump, Dir: dir, ID: "dump-2"})
	wantConflict(t, "a second backup", err, "backup is in progress")
	_, err = c.Stop(ctx, agent.StopRequest{})
	wantConflict(t, "stop during a backup", err, "backup is in progress")
	if err := <-done; err != nil {
		t.Fatalf("the first backup: %v", err)
	}
	busyDump, err := c.Backup(ctx, agent.BackupRequest{Method: agent.MethodDump, Dir: dir, ID: "dump-2"})
	if err != nil {
		t.Fatal(err)
	}
	writes := stopWriting()
	t.Logf("%d writes during the last two backups", writes)
	for _, b := range []agent.Manifest{busy, busyDump} {
		if !b.FactsExact || b.RowCounts["shop.orders"] <= 20010 || b.RowCounts["shop.orders"] > 20010+int64(writes) {
			t.Errorf("%s under writes: facts exact %v, shop.orders %d", b.ID, b.FactsExact, b.RowCounts["shop.orders"])
		}
		v := timed(t, "verify "+b.ID+" taken under writes", func() (agent.VerifyResult, error) {
			return c.VerifyBackup(ctx, b.ID, agent.VerifyRequest{Dir: dir, Port: verifyPortBackup})
		})
		checkVerified(t, dir, v, verifyPortBackup, b.RowCounts)
	}
	if busy.RowCounts["shop.orders"] >= busyDump.RowCounts["shop.orders"] {
		t.Errorf("writes between the two backups are not seen: %d then %d rows", busy.RowCounts["shop.orders"], busyDump.RowCounts["shop.orders"])
	}
	_, err = c.Backup(ctx, agent.BackupRequest{Method: agent.MethodDump, Dir: dir, ID: "phys-2"})
	wantConflict(t, "a backup id that exists", err, "exists")

	// Content broken behind a good checksum fails the restore check, and
	// the scratch server and its directory go all the same.
	for _, tt := range []struct{ id, method, file, content, want string }{
		{"bad-sql", agent.MethodDump, agent.DumpFile, "CREATE TABLE nope (;\n", "restore: load the dump (mariadb): exit status 1"},
		{"bad-stream", agent.MethodMariabackup, agent.MariabackupFile, "not an mbstream", "restore: mbstream -x: exit status"},
	} {
		fakeBackup(t, dir, tt.id, tt.method, tt.file, tt.content)
		v, err := c.VerifyBackup(ctx, tt.id, agent.VerifyRequest{Dir: dir, Port: verifyPortDump})
		if err != nil || v.OK || !strings.HasPrefix(v.Error, tt.want) {
			t.Errorf("verify %s: %+v, %v; want ok false with %q", tt.id, v, err, tt.want)
		}
		if _, err := os.Stat(filepath.Join(dir, ".verify-"+tt.id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("verify %s left its scratch directory: %v", tt.id, err)
		}
	}

	// A planted dump's client command does not run, and a planted
	// backup-my.cnf does not choose mariadb-backup's options.
	marker := filepath.Join(os.TempDir(), fmt.Sprintf("nines-planted-%d", time.Now().UnixNano()))
	fakeBackup(t, dir, "planted-shell", agent.MethodDump, agent.DumpFile, "\\! touch "+marker+"\nCREATE DATABASE planted;\n")
	fakeBackup(t, dir, "planted-cnf", agent.MethodMariabackup, agent.MariabackupFile,
		mbstream(t, map[string]string{"backup-my.cnf": "[mysqld]\ninnodb_page_size=16384\ninnodb_log_group_home_dir=/var/lib/mysql\n"}))
	for id, want := range map[string]string{
		"planted-shell": "restore: load the dump (mariadb): exit status 1",
		"planted-cnf":   "restore: read backup-my.cnf: innodb_log_group_home_dir is not a setting",
	} {
		v, err := c.VerifyBackup(ctx, id, agent.VerifyRequest{Dir: dir, Port: verifyPortDump})
		if err != nil || v.OK || !strings.HasPrefix(v.Error, want) {
			t.Errorf("verify %s: %+v, %v; want ok false with %q", id, v, err, want)
		}
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		os.Remove(marker)
		t.Errorf("the planted dump ran its shell command: %s exists (%v)", marker, err)
	}

	// Cancelling a backup stops it: nothing is left behind and the node
	// is no longer desynced.
	cctx, cancelBackup := context.WithCancel(ctx)
	go func() {
		_, err := c.Backup(cctx, agent.BackupRequest{Method: agent.MethodMariabackup, Dir: dir, ID: "cancelled", Desync: true})
		done <- err
	}()
	waitFile(t, filepath.Join(dir, "cancelled", agent.MariabackupFile))
	cancelBackup()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled backup: %v", err)
	}
	waitMetric(t, c, "nines_agent_backup_running 0")
	if _, err := os.Stat(filepath.Join(dir, "cancelled")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cancelled backup left %v", err)
	}
	if err := db.QueryRowContext(ctx, "SELECT @@wsrep_desync").Scan(&desync); err != nil || desync {
		t.Errorf("wsrep_desync after a cancelled backup: %v, %v; want OFF", desync, err)
	}

	// Unauthenticated.
	bad := agent.NewClient(c.URL(), "not-the-token-at-all", nil)
	if _, err := bad.Backup(ctx, agent.BackupRequest{Method: agent.MethodDump, Dir: dir, ID: "x"}); !agent.IsUnauthorized(err) {
		t.Errorf("backup without the token: %v", err)
	}
	if _, err := bad.Backups(ctx, dir); !agent.IsUnauthorized(err) {
		t.Errorf("list without the token: %v", err)
	}
	if _, err := bad.VerifyBackup(ctx, "phys-1", agent.VerifyRequest{Dir: dir}); !agent.IsUnauthorized(err) {
		t.Errorf("verify without the token: %v", err)
	}
	if err := bad.DeleteBackup(ctx, dir, "phys-1"); !agent.IsUnauthorized(err) {
		t.Errorf("delete without the token: %v", err)
	}

	m, err := c.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"nines_agent_backup_running 0",
		"nines_agent_verify_running 0",
		`nines_agent_actions_total{action="backup",result="ok"} 4`,
		`nines_agent_actions_total{action="backup",result="refused"} 2`,
		`nines_agent_actions_total{action="backup",result="error"} 1`,
		`nines_agent_actions_total{action="verify",result="ok"} 9`, // answered, OK or not: 7 and the 2 planted
		`nines_agent_actions_total{action="backup-delete",result="ok"} 2`,
		`nines_agent_actions_total{action="backup-delete",result="refused"} 2`,
	} {
		if !strings.Contains(m, "\n"+line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}

// writeSteadily inserts into shop.orders and updates nines.probe, one
// autocommit statement after another, until the returned function is
// called; that returns how many orders were written.
func writeSteadily(t *testing.T, n node) func() int {
	t.Helper()
	db, err := n.srv.DB()
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan int, 1)
	go func() {
		defer db.Close()
		writes := 0
		for {
			select {
			case <-stop:
				done <- writes
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := db.ExecContext(ctx, "INSERT INTO shop.orders (customer, note) VALUES (1, 'during a backup')")
			if err == nil {
				writes++
				_, err = db.ExecContext(ctx, "UPDATE nines.probe SET at = NOW(6) WHERE id = 1")
			}
			cancel()
			if err != nil {
				t.Errorf("write during a backup: %v", err)
				done <- writes
				return
			}
		}
	}()
	return func() int {
		close(stop)
		return <-done
	}
}

// backupDir is a directory for backups that user mysql can reach, as the
// scratch servers of verifications run as mysql.
func backupDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "nines-backups-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// checkManifest checks a manifest against the loaded data and against
// the files on disk.
func checkManifest(t *testing.T, dir string, m agent.Manifest, method, file string, rows map[string]int64) {
	t.Helper()
	if m.Version != 1 || m.Method != method || m.Node != "a1" || m.Host == "" || m.ServerVersion == "" ||
		m.StartedAt.IsZero() || m.EndedAt.Before(m.StartedAt) || m.DurationSeconds <= 0 {
		t.Errorf("%s manifest: %+v", method, m)
	}
	if m.GTID == "" || m.BinlogFile == "" || m.BinlogPos <= 0 {
		t.Errorf("%s position: gtid %q binlog %s:%d", method, m.GTID, m.BinlogFile, m.BinlogPos)
	}
	if len(m.Files) != 1 || m.Files[0].Name != file || m.SizeBytes <= 0 || m.SizeBytes != m.Files[0].Size {
		t.Fatalf("%s files: %+v, size %d", method, m.Files, m.SizeBytes)
	}
	b, err := os.ReadFile(filepath.Join(dir, m.ID, file))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != m.Files[0].SHA256 || int64(len(b)) != m.Files[0].Size {
		t.Errorf("%s: the file's sha256 and size differ from the manifest's", file)
	}
	wantTables := map[string]int{"shop": 3, "crm": 2, "empty_schema": 0}
	if !maps.Equal(m.Tables, wantTables) || !maps.Equal(m.RowCounts, rows) || !m.FactsExact {
		t.Errorf("%s facts: tables %v row counts %v exact %v; want %v %v exact", method, m.Tables, m.RowCounts, m.FactsExact, wantTables, rows)
	}
	var onDisk agent.Manifest
	b, err = os.ReadFile(filepath.Join(dir, m.ID, agent.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &onDisk); err != nil || onDisk.Files[0] != m.Files[0] || onDisk.GTID != m.GTID {
		t.Errorf("%s: manifest.json differs from the answer: %v", method, err)
	}
}

// checkVerified checks a successful verification and that it left
// nothing behind.
func checkVerified(t *testing.T, dir string, v agent.VerifyResult, port int, rows map[string]int64) {
	t.Helper()
	if !v.OK || v.Error != "" || v.Port != port || v.RestoreSeconds <= 0 || v.CheckSeconds <= 0 {
		t.Errorf("verify %s: %+v", v.ID, v)
	}
	passed := map[string]bool{}
	for _, ch := range v.Checks {
		if !ch.OK {
			t.Errorf("verify %s: check %s failed: %s", v.ID, ch.Name, ch.Detail)
		}
		passed[ch.Name] = ch.OK
	}
	want := []string{"restore", "server_starts", "tables"}
	for k := range rows {
		want = append(want, "row_count:"+k, "check_table:"+k)
	}
	for _, name := range want {
		if !passed[name] {
			t.Errorf("verify %s: no passed check %s in %+v", v.ID, name, v.Checks)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".verify-"+v.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("verify %s left its scratch directory: %v", v.ID, err)
	}
}

// corrupt flips one byte in the middle of a file.
func corrupt(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// listed is a listing as "id:state:method ...".
func listed(list []agent.BackupInfo) string {
	var s []string
	for _, b := range list {
		s = append(s, b.ID+":"+b.State+":"+b.Method)
	}
	return strings.Join(s, " ")
}

// fakeBackup writes a backup by hand: one gzipped file with content and
// a manifest with its true checksum.
func fakeBackup(t *testing.T, dir, id, method, file, content string) {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	gz.Write([]byte(content))
	gz.Close()
	if err := os.MkdirAll(filepath.Join(dir, id), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, id, file), b.Bytes(), 0o640); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b.Bytes())
	m := agent.Manifest{Version: 1, ID: id, Method: method, StartedAt: time.Now(),
		Files: []agent.BackupFile{{Name: file, Size: int64(b.Len()), SHA256: hex.EncodeToString(sum[:])}}}
	j, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, id, agent.ManifestFile), j, 0o640); err != nil {
		t.Fatal(err)
	}
}

// mbstream is an mbstream of files, as mariadb-backup would stream them.
func mbstream(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	var names []string
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	cmd := osexec.Command("mbstream", append([]string{"-c"}, names...)...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mbstream -c: %v", err)
	}
	return string(out)
}

// waitFile polls until path exists.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitMetric polls /metrics until it has line.
func waitMetric(t *testing.T, c *agent.Client, line string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := c.Metrics(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(m, "\n"+line+"\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed %q", line)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
