package ndbsim

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Backup files as a data node writes them [facts A.3 START BACKUP]: under
// BackupDataDir/BACKUP/BACKUP-<id>/, per node, BACKUP-<id>.<node>.ctl,
// BACKUP-<id>-0.<node>.data and BACKUP-<id>.<node>.log. The facts (the
// 8.0 manual) spell the data file's suffix ".data"; ndb_print_backup_file's
// page spells it ".Data", so readers of these files should accept both.
//
// The simulator's files carry NDB's magic ("NDBBCKUP", the header every
// native backup file starts with) and a readable description of what a
// real file would hold; they are not ndb_restore's format, so only their
// names, sizes and checksums are faithful to check.

// BackupDirName is the directory of backup id under BackupDataDir/BACKUP.
func BackupDirName(id int) string { return "BACKUP-" + strconv.Itoa(id) }

// BackupFileNames are the three files data node node writes for backup
// id: control, data and log file, in that order.
func BackupFileNames(id, node int) []string {
	return []string{
		fmt.Sprintf("BACKUP-%d.%d.ctl", id, node),
		fmt.Sprintf("BACKUP-%d-0.%d.data", id, node),
		fmt.Sprintf("BACKUP-%d.%d.log", id, node),
	}
}

// BackupPath is the directory data node files of backup id go to, under
// the node's BackupDataDir.
func BackupPath(backupDataDir string, id int) string {
	return filepath.Join(backupDataDir, "BACKUP", BackupDirName(id))
}

// writeBackupFiles writes data node n's three files of backup id under
// dir (its BackupDataDir). Each file is written to a temporary name and
// renamed, so a reader never sees a partial file under the final name.
func writeBackupFiles(dir string, id int, n *node) error {
	target := BackupPath(dir, id)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("data node %d: backup %d: %w", n.ID, id, err)
	}
	names := BackupFileNames(id, n.ID)
	kinds := []string{"control file: table definitions of the cluster", "data file: this node's fragments' records", "log file: committed transactions during the backup"}
	for i, name := range names {
		var b bytes.Buffer
		b.WriteString("NDBBCKUP")
		fmt.Fprintf(&b, "\nnines ndbsim backup %d node %d node_group %d\n%s\n", id, n.ID, n.NodeGroup, kinds[i])
		if i == 1 {
			// The data file grows with the node's DataMemory in use:
			// one line per page, so sizes differ as real ones do.
			for p := 0; p < n.dataUsed; p++ {
				fmt.Fprintf(&b, "page %d of backup %d node %d\n", p, id, n.ID)
			}
		}
		tmp := filepath.Join(target, "."+name+".tmp")
		if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("data node %d: backup %d: %w", n.ID, id, err)
		}
		if err := os.Rename(tmp, filepath.Join(target, name)); err != nil {
			return fmt.Errorf("data node %d: backup %d: %w", n.ID, id, err)
		}
	}
	return nil
}
