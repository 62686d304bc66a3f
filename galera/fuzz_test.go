package galera

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// The parsers read files a crashed server left behind and status a
// failing server reports, so any input must give either a value or an
// error that wraps the package's sentinel, never a panic, and what they
// accept must survive a round trip. The seeds run in every go test.

func FuzzParseGrastate(f *testing.F) {
	f.Add([]byte("# GALERA saved state\nversion: 2.1\nuuid:    " + uuidA + "\nseqno:   -1\nsafe_to_bootstrap: 0\n"))
	f.Add([]byte("# GALERA saved state\nversion: 2.1\nuuid:    " + uuidA + "\nseqno:   42\nsafe_to_bootstrap: 1\n"))
	f.Add([]byte("version: 2.0\nuuid: " + UndefinedUUID + "\nseqno: -1\n"))
	f.Add([]byte("uuid: " + uuidA + "\nseqno: 9223372036854775807\n"))
	f.Add([]byte("uuid:\nseqno:\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ParseGrastate(b)
		if err != nil {
			if !errors.Is(err, ErrBadGrastate) {
				t.Fatalf("error %v does not wrap ErrBadGrastate", err)
			}
			return
		}
		if g.Seqno < UndefinedSeqno {
			t.Fatalf("accepted seqno %d", g.Seqno)
		}
		if !g.Position().Known() {
			return
		}
		out, err := BootstrapGrastate(b, g.Position())
		if err != nil {
			t.Fatalf("BootstrapGrastate of a parsed file: %v", err)
		}
		g2, err := ParseGrastate(out)
		if err != nil {
			t.Fatalf("BootstrapGrastate output does not parse: %v\n%q", err, out)
		}
		if g2.Position() != g.Position() || !g2.SafeToBootstrap {
			t.Fatalf("bootstrap edit changed %+v into %+v", g, g2)
		}
	})
}

func FuzzParseRecoveredPosition(f *testing.F) {
	f.Add([]byte(recoverLog))
	f.Add([]byte("WSREP: Recovered position: " + UndefinedUUID + ":-1\n"))
	f.Add([]byte("WSREP: Recovered position: " + uuidB + ":9,0-1-5"))
	f.Add([]byte("WSREP: Recovered position: :"))
	f.Add([]byte("WSREP: Recovered position: " + uuidB + ":9\r\nWSREP: Recovered position: x"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseRecoveredPosition(b)
		if err != nil {
			if !errors.Is(err, ErrNoRecoveredPosition) && !errors.Is(err, ErrBadPosition) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if !bytes.Contains(b, []byte(recoveredMarker)) {
			t.Fatalf("position %v from a log without the marker", p)
		}
		p2, err := ParsePosition(p.String())
		if err != nil || p2 != p {
			t.Fatalf("round trip of %+v gave %+v, %v", p, p2, err)
		}
	})
}

func FuzzParsePosition(f *testing.F) {
	f.Add(uuidA + ":42")
	f.Add(UndefinedUUID + ":-1")
	f.Add(uuidB + ":9,0-1-5,1-2-3")
	f.Add(strings.ToUpper(uuidB) + ":9")
	f.Add(uuidB + ":-2")
	f.Add(":")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePosition(s)
		if err != nil {
			if !errors.Is(err, ErrBadPosition) {
				t.Fatalf("error %v does not wrap ErrBadPosition", err)
			}
			return
		}
		if p.Seqno < UndefinedSeqno || len(p.UUID) != 36 {
			t.Fatalf("accepted %+v from %q", p, s)
		}
		p2, err := ParsePosition(p.String())
		if err != nil || p2 != p {
			t.Fatalf("round trip of %+v gave %+v, %v", p, p2, err)
		}
	})
}

// FuzzParseStatus varies the values decisions are made on. Whatever the
// server says, the node is Synced only when each of them parsed cleanly
// to the healthy value, and an error names the variable.
func FuzzParseStatus(f *testing.F) {
	f.Add("Primary", "3", "4", "ON", "7", "0.5")
	f.Add("non-Primary", "1", "0", "OFF", "18446744073709551615", "0")
	f.Add("Disconnected", "0", "0", "OFF", "18446744073709551614", "NaN")
	f.Add("primary", "-1", "x", "", "-2", "1.5")
	f.Add("Primary", "3", "4", "on ", "99999999999999999999", "1e-3")
	f.Fuzz(func(t *testing.T, status, size, state, ready, confID, fc string) {
		st := syncedStatus()
		st["wsrep_cluster_status"], st["wsrep_cluster_size"], st["wsrep_local_state"] = status, size, state
		st["wsrep_ready"], st["wsrep_cluster_conf_id"], st["wsrep_flow_control_paused"] = ready, confID, fc
		g, err := ParseStatus(st, nil)
		if g == nil {
			t.Fatal("nil status")
		}
		if err != nil {
			if !errors.Is(err, ErrBadStatus) || !strings.Contains(err.Error(), "wsrep_") {
				t.Fatalf("error %v names no variable or wraps no ErrBadStatus", err)
			}
		}
		if g.Synced() {
			if !strings.EqualFold(strings.TrimSpace(status), "primary") || !strings.EqualFold(strings.TrimSpace(ready), "on") {
				t.Fatalf("Synced with cluster status %q, ready %q", status, ready)
			}
			if n, perr := strconv.Atoi(strings.TrimSpace(state)); perr != nil || n != 4 {
				t.Fatalf("Synced with local state %q", state)
			}
		}
		if g.ClusterSize < 0 || g.ClusterConfID < -1 || g.FlowControlPaused < 0 || g.FlowControlPaused > 1 {
			t.Fatalf("out-of-range field accepted: %+v", g)
		}
	})
}

func FuzzParseGvwstate(f *testing.F) {
	f.Add([]byte(gvwstate))
	f.Add([]byte(strings.ReplaceAll(gvwstate, "\n", "\r\n")))
	f.Add([]byte(gvwstate[:len(gvwstate)/2]))
	f.Add([]byte("my_uuid: " + memberA + "\n#vwbeg\nview_id: 3 " + memberA + " 1\nbootstrap: 1\nmember: " + memberA + " 0\n#vwend\n"))
	f.Add([]byte("#vwend\n#vwbeg\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ParseGvwstate(b)
		if err != nil {
			if !errors.Is(err, ErrBadGvwstate) {
				t.Fatalf("error %v does not wrap ErrBadGvwstate", err)
			}
			return
		}
		if g.View.Type != ViewPrimary || !g.Has(g.MyUUID) || len(g.MyUUID) != 36 {
			t.Fatalf("accepted %+v", g)
		}
		seen := map[string]bool{}
		for _, m := range g.Members {
			if seen[m.UUID] || m.Segment < 0 || m.Segment > 255 {
				t.Fatalf("accepted member %+v of %+v", m, g)
			}
			seen[m.UUID] = true
		}
	})
}

func FuzzClusterAddress(f *testing.F) {
	f.Add([]byte("[mysqld]\nwsrep_cluster_address=gcomm://10.0.0.1,10.0.0.2:4577,[fe80::1]?pc.wait_prim=no\n"))
	f.Add([]byte("[galera]\nwsrep-cluster-address = 'gcomm://'\n"))
	f.Add([]byte("[mysqld]\nwsrep_cluster_address=gcomm://a:b:c,,\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		peers, err := ParseClusterAddress(ClusterAddressOf(b))
		if err != nil {
			return
		}
		for _, p := range peers {
			if !strings.Contains(p, ":") {
				t.Fatalf("peer %q has no port", p)
			}
		}
	})
}

func FuzzClearBootstrapGrastate(f *testing.F) {
	f.Add([]byte("# GALERA saved state\nversion: 2.1\nuuid:    " + uuidA + "\nseqno:   42\nsafe_to_bootstrap: 1\n"))
	f.Add([]byte("uuid: " + uuidA + "\nseqno: -1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		before, err := ParseGrastate(b)
		out, cerr := ClearBootstrapGrastate(b)
		if (err == nil) != (cerr == nil) {
			t.Fatalf("parse %v, clear %v", err, cerr)
		}
		if err != nil {
			return
		}
		after, err := ParseGrastate(out)
		if err != nil || after.SafeToBootstrap || after.Position() != before.Position() {
			t.Fatalf("cleared %q into %q: %+v %v", b, out, after, err)
		}
	})
}
