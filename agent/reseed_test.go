package agent

import (
	"strings"
	"testing"
)

func TestSeedPositionPrefersTheReplicaPosition(t *testing.T) {
	files := map[string][]byte{
		slaveInfoFile:  []byte("SET GLOBAL gtid_slave_pos = '0-1-42';\nCHANGE MASTER TO master_use_gtid = slave_pos\n"),
		binlogInfoFile: []byte("binlog.000003\t1234\t0-1-42\n"),
	}
	slave, binlog, err := seedPosition(files)
	if err != nil || slave != "0-1-42" || binlog != "0-1-42" {
		t.Fatalf("got %q %q %v", slave, binlog, err)
	}
	// Several domains, spaced as the tool may write them.
	files[slaveInfoFile] = []byte("SET GLOBAL gtid_slave_pos = '0-1-42, 1-2-7';")
	if slave, _, err := seedPosition(files); err != nil || slave != "0-1-42,1-2-7" {
		t.Errorf("two domains: %q %v", slave, err)
	}
	// A primary's backup has no slave info: its binlog position it is.
	delete(files, slaveInfoFile)
	if slave, _, err := seedPosition(files); err != nil || slave != "0-1-42" {
		t.Errorf("no slave info: %q %v", slave, err)
	}
	if _, _, err := seedPosition(map[string][]byte{}); err == nil || !strings.Contains(err.Error(), "no GTID position") {
		t.Errorf("no position files: %v", err)
	}
	// Anything but a position is refused: it is written into a statement.
	if _, _, err := seedPosition(map[string][]byte{binlogInfoFile: []byte("binlog.000001 4 0-1-1';DROP")}); err == nil {
		t.Error("a quote in the position: want an error")
	}
	if _, _, err := seedPosition(map[string][]byte{slaveInfoFile: []byte("SET GLOBAL gtid_slave_pos = '0-1-1 2';")}); err == nil {
		t.Error("a position with a space inside: want an error")
	}
	if gtidPosition.MatchString("0-1-1'; DROP") || !gtidPosition.MatchString("0-1-1,2-3-4") {
		t.Error("gtidPosition")
	}
}
