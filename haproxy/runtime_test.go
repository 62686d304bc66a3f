package haproxy

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// testdata/show-stat-2.6.csv is `show stat` from Debian's haproxy 2.6.12
// (bookworm): listener demo-writer with n1 UP holding two sessions, n2
// DOWN (connection refused), n3 put in maint; demo-reader with n1 set to
// drain and n2 DOWN.
func TestParseStatDebian26(t *testing.T) {
	b, err := os.ReadFile("testdata/show-stat-2.6.csv")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseStat(string(b))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		name, status, state, check string
		up                         bool
		scur, stot, econ           int64
		downtime                   time.Duration
	}
	want := []row{
		{"demo-writer/n1", "UP", "UP", "L4OK", true, 2, 2, 0, 0},
		{"demo-writer/n2", "DOWN", "DOWN", "L4CON", false, 0, 0, 0, 2 * time.Second},
		{"demo-writer/n3", "MAINT", "MAINT", "", false, 0, 0, 0, 0},
		{"demo-reader/n1", "DRAIN", "DRAIN", "L4OK", false, 0, 0, 0, 0},
		{"demo-reader/n2", "DOWN", "DOWN", "L4CON", false, 0, 0, 0, 2 * time.Second},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d servers, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		r := row{g.Backend + "/" + g.Server, g.Status, g.State(), g.CheckStatus, g.Up(), g.CurrentSessions, g.TotalSessions, g.ConnectionErrors, g.Downtime}
		if r != w {
			t.Errorf("server %d: got %+v, want %+v", i, r, w)
		}
	}
}

func TestServerStatStates(t *testing.T) {
	for _, tt := range []struct {
		status, state string
		up            bool
	}{
		{"UP", "UP", true},
		{"UP 1/2", "UP", true},
		{"DOWN 1/2", "DOWN", false},
		{"NOLB", "NOLB", false},
		{"MAINT (via b/s)", "MAINT", false},
		{"no check", "no check", false},
	} {
		s := ServerStat{Status: tt.status}
		if s.State() != tt.state || s.Up() != tt.up {
			t.Errorf("%q: State %q Up %v, want %q %v", tt.status, s.State(), s.Up(), tt.state, tt.up)
		}
	}
}

func TestParseStatRefusals(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"Permission denied\n\n", `not show stat CSV: "Permission denied"`},
		{"", "not show stat CSV"},
		{"# pxname,svname,scur,stot,status\n", `no column "econ"`},
		{"# pxname,svname,scur,stot,econ,status,type\nb,s,x,1,0,UP,2\n", `line 2 (b/s): scur "x" is not a number`},
	} {
		_, err := ParseStat(tt.text)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseStat(%q): error %v, want one containing %q", tt.text, err, tt.want)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	if b, err := os.ReadFile("testdata/show-stat-2.6.csv"); err == nil {
		f.Add(string(b))
	}
	f.Add("# pxname,svname,scur,stot,econ,status\n")
	f.Fuzz(func(t *testing.T, s string) { _, _ = ParseStat(s) })
}

// SetState checks its input before it connects: nothing reaches the
// socket but one well-formed command.
func TestSetStateRefusesBadInput(t *testing.T) {
	r := Runtime{Socket: "/nonexistent/haproxy.sock"}
	ctx := context.Background()
	for _, tt := range []struct{ backend, server, state, want string }{
		{"w", "n1", "up", `state "up": want ready, drain or maint`},
		{"w", "n1\nshutdown sessions", "maint", "backend and server are names"},
		{"w;x", "n1", "maint", "backend and server are names"},
		{"", "n1", "maint", "backend and server are names"},
	} {
		err := r.SetState(ctx, tt.backend, tt.server, tt.state)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("SetState(%q, %q, %q): %v, want an error containing %q", tt.backend, tt.server, tt.state, err, tt.want)
		}
	}
	_, err := r.Command(ctx, "show stat; shutdown frontend x")
	if err == nil || !strings.Contains(err.Error(), "one command per call") {
		t.Errorf("Command with ';': %v", err)
	}
	err = r.SetState(ctx, "w", "n1", StateMaint)
	var re *RuntimeError
	if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), "/nonexistent/haproxy.sock") {
		t.Errorf("SetState on a missing socket: %v, want a connection error naming the socket", err)
	}
}
