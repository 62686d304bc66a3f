package galera

import (
	"errors"
	"strings"
	"testing"
)

const (
	uuidA = "eea5cc6a-e926-11f1-92ef-cacbfc948463"
	uuidB = "2d131d03-e921-11f1-93c0-7bfc10d240cf"
)

// Real output of `mariadbd --wsrep-recover` (10.11.19) after a kill -9,
// appended to the log of an earlier run on the fresh datadir.
const recoverLog = `2026-11-25 23:21:22 0 [Note] Server socket created on IP: '127.0.0.1', port: '21306'.
2026-11-25 23:21:22 0 [Note] WSREP: Recovered position: 00000000-0000-0000-0000-000000000000:-1
2026-11-25 23:21:28 0 [Note] Starting MariaDB 10.11.19-MariaDB-0+deb12u1-log as process 7040
2026-11-25 23:21:28 0 [Note] InnoDB: log sequence number 53190; transaction id 30
2026-11-25 23:21:28 0 [Note] WSREP: Recovered position: eea5cc6a-e926-11f1-92ef-cacbfc948463:4
`

func TestParseRecoveredPosition(t *testing.T) {
	tests := []struct {
		name    string
		log     string
		want    Position
		wantErr error
	}{
		{name: "last line wins", log: recoverLog, want: Position{UUID: uuidA, Seqno: 4}},
		{name: "fresh datadir", log: "x [Note] WSREP: Recovered position: 00000000-0000-0000-0000-000000000000:-1\n",
			want: Position{UUID: UndefinedUUID, Seqno: -1}},
		{name: "no trailing newline", log: "[Note] WSREP: Recovered position: " + uuidB + ":9",
			want: Position{UUID: uuidB, Seqno: 9}},
		{name: "crlf", log: "[Note] WSREP: Recovered position: " + uuidB + ":9\r\n",
			want: Position{UUID: uuidB, Seqno: 9}},
		{name: "upper-case uuid is normalised", log: "WSREP: Recovered position: " + strings.ToUpper(uuidB) + ":9",
			want: Position{UUID: uuidB, Seqno: 9}},
		{name: "gtid suffix kept", log: "WSREP: Recovered position: " + uuidB + ":9,0-1-5\n",
			want: Position{UUID: uuidB, Seqno: 9, GTID: "0-1-5"}},
		{name: "no line", log: "2026 [Note] WSREP: skipping position recovery\n", wantErr: ErrNoRecoveredPosition},
		{name: "empty", log: "", wantErr: ErrNoRecoveredPosition},
		{name: "truncated", log: "WSREP: Recovered position: " + uuidB[:20], wantErr: ErrBadPosition},
		{name: "seqno not a number", log: "WSREP: Recovered position: " + uuidB + ":x", wantErr: ErrBadPosition},
		{name: "seqno below -1", log: "WSREP: Recovered position: " + uuidB + ":-2", wantErr: ErrBadPosition},
		{name: "bad gtid", log: "WSREP: Recovered position: " + uuidB + ":3,0-1", wantErr: ErrBadPosition},
		{name: "uuid without dashes", log: "WSREP: Recovered position: " + strings.ReplaceAll(uuidB, "-", "x") + ":3", wantErr: ErrBadPosition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRecoveredPosition([]byte(tt.log))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPositionString(t *testing.T) {
	for _, s := range []string{uuidA + ":4", UndefinedUUID + ":-1", uuidB + ":12,0-1-5", uuidB + ":12,0-1-5,1-2-3"} {
		p, err := ParsePosition(s)
		if err != nil {
			t.Fatalf("ParsePosition(%q): %v", s, err)
		}
		if p.String() != s {
			t.Fatalf("round trip %q gave %q", s, p.String())
		}
	}
}

func TestParseGrastate(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Grastate
		wantErr error
	}{
		{name: "running or crashed", in: "# GALERA saved state\nversion: 2.1\nuuid:    " + uuidA + "\nseqno:   -1\nsafe_to_bootstrap: 0\n",
			want: Grastate{Version: "2.1", UUID: uuidA, Seqno: -1}},
		{name: "graceful stop of the last node", in: "# GALERA saved state\nversion: 2.1\nuuid:    " + uuidA + "\nseqno:   42\nsafe_to_bootstrap: 1\n",
			want: Grastate{Version: "2.1", UUID: uuidA, Seqno: 42, SafeToBootstrap: true}},
		{name: "version 2.0 has no safe_to_bootstrap", in: "version: 2.0\nuuid: " + uuidA + "\nseqno: 7\n",
			want: Grastate{Version: "2.0", UUID: uuidA, Seqno: 7}},
		{name: "unknown keys ignored, crlf tolerated", in: "version: 2.1\r\nuuid: " + uuidA + "\r\nseqno: 7\r\nfuture_key: x\r\n",
			want: Grastate{Version: "2.1", UUID: uuidA, Seqno: 7}},
		{name: "empty", in: "", wantErr: ErrBadGrastate},
		{name: "no seqno", in: "uuid: " + uuidA + "\n", wantErr: ErrBadGrastate},
		{name: "no uuid", in: "seqno: 3\n", wantErr: ErrBadGrastate},
		{name: "duplicate seqno", in: "uuid: " + uuidA + "\nseqno: 3\nseqno: 4\n", wantErr: ErrBadGrastate},
		{name: "bad safe_to_bootstrap", in: "uuid: " + uuidA + "\nseqno: 3\nsafe_to_bootstrap: yes\n", wantErr: ErrBadGrastate},
		{name: "line without colon", in: "uuid " + uuidA + "\nseqno: 3\n", wantErr: ErrBadGrastate},
		{name: "bad uuid", in: "uuid: nope\nseqno: 3\n", wantErr: ErrBadGrastate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGrastate([]byte(tt.in))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBootstrapGrastate(t *testing.T) {
	crashed := "# GALERA saved state\nversion: 2.1\nuuid:    " + uuidA + "\nseqno:   -1\nsafe_to_bootstrap: 0\n"
	tests := []struct {
		name    string
		cur     string
		pos     Position
		want    string
		wantErr error
	}{
		{name: "crashed node gets seqno and flag", cur: crashed, pos: Position{UUID: uuidA, Seqno: 22},
			want: "# GALERA saved state\nversion: 2.1\nuuid:    " + uuidA + "\nseqno:   22\nsafe_to_bootstrap: 1\n"},
		{name: "missing file is written whole", cur: "", pos: Position{UUID: uuidA, Seqno: 3},
			want: "# GALERA saved state\nversion: 2.1\nuuid:    " + uuidA + "\nseqno:   3\nsafe_to_bootstrap: 1\n"},
		{name: "reset grastate takes the recovered uuid", cur: "version: 2.1\nuuid: " + UndefinedUUID + "\nseqno: -1\n", pos: Position{UUID: uuidA, Seqno: 3},
			want: "version: 2.1\nuuid:    " + uuidA + "\nseqno:   3\nsafe_to_bootstrap: 1\n"},
		{name: "other history refused", cur: crashed, pos: Position{UUID: uuidB, Seqno: 3}, wantErr: ErrUUIDMismatch},
		{name: "unknown seqno refused", cur: crashed, pos: Position{UUID: uuidA, Seqno: -1}, wantErr: ErrUnknownPosition},
		{name: "undefined position refused", cur: crashed, pos: Position{UUID: UndefinedUUID, Seqno: -1}, wantErr: ErrUnknownPosition},
		{name: "corrupt file refused", cur: "garbage\n", pos: Position{UUID: uuidA, Seqno: 3}, wantErr: ErrBadGrastate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BootstrapGrastate([]byte(tt.cur), tt.pos)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
			g, err := ParseGrastate(got)
			if err != nil {
				t.Fatalf("result does not parse: %v", err)
			}
			if g.Position() != (Position{UUID: tt.pos.UUID, Seqno: tt.pos.Seqno}) || !g.SafeToBootstrap {
				t.Fatalf("result %+v does not bootstrap at %v", g, tt.pos)
			}
		})
	}
}

func TestChooseBootstrap(t *testing.T) {
	undefined := Position{UUID: UndefinedUUID, Seqno: -1}
	at := func(uuid string, seqno int64) Position { return Position{UUID: uuid, Seqno: seqno} }
	tests := []struct {
		name    string
		in      []Position
		want    int
		wantErr error
	}{
		{name: "highest seqno wins", in: []Position{at(uuidA, 20), at(uuidA, 22), at(uuidA, 21)}, want: 1},
		{name: "tie goes to lowest index", in: []Position{at(uuidA, 20), at(uuidA, 22), at(uuidA, 22)}, want: 1},
		{name: "all equal picks the first", in: []Position{at(uuidA, 5), at(uuidA, 5), at(uuidA, 5)}, want: 0},
		{name: "undefined nodes are ignored", in: []Position{undefined, at(uuidA, 3), undefined}, want: 1},
		{name: "unknown seqno is not eligible", in: []Position{at(uuidA, -1), at(uuidA, 0)}, want: 1},
		{name: "single node", in: []Position{at(uuidA, 0)}, want: 0},
		{name: "uuids disagree", in: []Position{at(uuidA, 20), at(uuidB, 30)}, wantErr: ErrUUIDMismatch},
		{name: "uuid of unknown seqno still counts", in: []Position{at(uuidA, 20), at(uuidB, -1)}, wantErr: ErrUUIDMismatch},
		{name: "reset history against real one", in: []Position{at(UndefinedUUID, 0), at(uuidA, 3)}, wantErr: ErrUUIDMismatch},
		{name: "all undefined", in: []Position{undefined, undefined}, wantErr: ErrNoCandidate},
		{name: "only unknown seqnos", in: []Position{at(uuidA, -1), undefined}, wantErr: ErrNoCandidate},
		{name: "empty", in: nil, wantErr: ErrNoCandidate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cands := make([]Candidate, len(tt.in))
			for i, p := range tt.in {
				cands[i] = Candidate{Name: "n" + string(rune('1'+i)), Position: p}
			}
			got, err := ChooseBootstrap(cands)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if got != -1 {
					t.Fatalf("index = %d with an error, want -1", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tt.want {
				t.Fatalf("chose %d, want %d", got, tt.want)
			}
		})
	}
}

func TestClearBootstrapGrastate(t *testing.T) {
	cur := "# GALERA saved state\nversion: 2.1\nuuid:    9130690e-e921-11f1-b504-f6cb6679f2e6\nseqno:   42\nsafe_to_bootstrap: 1\n"
	b, err := ClearBootstrapGrastate([]byte(cur))
	if err != nil {
		t.Fatal(err)
	}
	g, err := ParseGrastate(b)
	if err != nil || g.SafeToBootstrap || g.Seqno != 42 || g.UUID != "9130690e-e921-11f1-b504-f6cb6679f2e6" {
		t.Fatalf("cleared: %+v %v\n%s", g, err, b)
	}
	if _, err := ClearBootstrapGrastate([]byte("garbage")); err == nil {
		t.Error("a malformed grastate.dat was rewritten")
	}
}
