package galera

import "testing"

// The joiner logs below are cut from MariaDB 11 with Galera 4 in the
// sandbox (rsync SST): a first join with no data, and a graceful restart
// two writesets behind.
const (
	logFirstJoin = `2026-12-07  0:38:23 3 [Note] WSREP: SST received
2026-12-07  0:38:24 3 [Note] WSREP: SST received: 804e238d-f1d6-11f1-b840-73e8fbd5b2c3:2
2026-12-07  0:38:24 3 [Note] WSREP: SST succeeded for position 804e238d-f1d6-11f1-b840-73e8fbd5b2c3:2
2026-12-07  0:38:24 0 [Note] WSREP: Receiving IST... 100.0% (1/1 events) complete.
2026-12-07  0:38:24 2 [Note] WSREP: IST received: 804e238d-f1d6-11f1-b840-73e8fbd5b2c3:2`
	logRestart = `2026-12-07  0:38:42 2 [Note] WSREP: Prepared IST receiver for 18-19, listening at: tcp://127.0.0.1:27417
WSREP_SST: [INFO] rsync IST completed on joiner (20261207 00:38:43.553)
2026-12-07  0:38:44 3 [Note] WSREP: SST received
2026-12-07  0:38:44 3 [Note] WSREP: SST received: 804e238d-f1d6-11f1-b840-73e8fbd5b2c3:17
2026-12-07  0:38:44 2 [Note] WSREP: Receiving IST: 2 writesets, seqnos 18-19
2026-12-07  0:38:44 2 [Note] WSREP: IST received: 804e238d-f1d6-11f1-b840-73e8fbd5b2c3:19`
	uuid = "804e238d-f1d6-11f1-b840-73e8fbd5b2c3"
)

func TestJoinMethod(t *testing.T) {
	for _, tc := range []struct {
		name   string
		log    string
		start  Position
		want   string
		wantOK bool
	}{
		{"graceful restart: bypass at its own position, then IST", logRestart, Position{UUID: uuid, Seqno: 17}, TransferIST, true},
		{"fresh datadir: full SST", logFirstJoin, Position{UUID: UndefinedUUID, Seqno: -1}, TransferSST, true},
		{"started behind the donor's gcache: SST to a newer seqno", logRestart, Position{UUID: uuid, Seqno: 5}, TransferSST, true},
		{"other history: SST", logRestart, Position{UUID: "11111111-f1d6-11f1-b840-73e8fbd5b2c3", Seqno: 17}, TransferSST, true},
		{"crash, no position: SST", logRestart, Position{UUID: uuid, Seqno: -1}, TransferSST, true},
		{"provider IST only", "2026-12-07  0:38:44 2 [Note] WSREP: IST received: " + uuid + ":19", Position{UUID: uuid, Seqno: 17}, TransferIST, true},
		{"not joined yet", "2026-12-07  0:38:42 2 [Note] WSREP: Prepared IST receiver for 18-19", Position{UUID: uuid, Seqno: 17}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, line, ok := JoinMethod(tc.log, tc.start)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("JoinMethod = %q, %v (line %q); want %q, %v", got, ok, line, tc.want, tc.wantOK)
			}
			if ok && line == "" {
				t.Error("no evidence line")
			}
		})
	}
}
