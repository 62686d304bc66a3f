package galera

import (
	"strings"
)

// Ways a joiner received the cluster's state (JoinMethod).
const (
	// TransferIST: the joiner kept its data and received only the
	// writesets it missed, from a donor's gcache.
	TransferIST = "IST"
	// TransferSST: the joiner's data was replaced by a full copy of a
	// donor's (rsync, mariabackup, mysqldump).
	TransferSST = "SST"
)

// JoinMethod says how a node that started at start joined its cluster,
// from its error log written since that start: TransferIST or
// TransferSST, and the log line that shows it. ok is false while the log
// shows no completed state transfer (not joined yet, or the lines went
// elsewhere).
//
// The signal, as MariaDB 10.6+ with Galera 4 logs it: every state
// transfer ends with "WSREP: SST received: uuid:seqno", an IST too,
// because the SST script runs in bypass mode for it and leaves the
// datadir as it was. The seqno tells them apart: a bypass reports the
// joiner's own position, the one it started at; a real SST reports the
// donor's, which is ahead (or the joiner had no position to keep). The
// writesets after it then come by IST either way ("IST received"). A
// provider that logs no SST line at all for an IST is read by "IST
// received" alone.
func JoinMethod(log string, start Position) (method, evidence string, ok bool) {
	var sst, ist string
	for _, line := range strings.Split(log, "\n") {
		switch {
		case strings.Contains(line, "WSREP: SST received: "):
			sst = strings.TrimSpace(line)
		case strings.Contains(line, "WSREP: IST received: "):
			ist = strings.TrimSpace(line)
		}
	}
	if sst != "" {
		_, text, _ := strings.Cut(sst, "WSREP: SST received: ")
		got, err := ParsePosition(strings.TrimSpace(text))
		if err == nil && start.Known() && got.UUID == start.UUID && got.Seqno == start.Seqno {
			if ist != "" {
				return TransferIST, ist, true
			}
			return TransferIST, sst, true
		}
		return TransferSST, sst, true
	}
	if ist != "" {
		return TransferIST, ist, true
	}
	return "", "", false
}
