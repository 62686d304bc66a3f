package galera

import (
	"bytes"
	"errors"
	"testing"
)

// The parsers read files a crashed server left behind, so any byte string
// must give either a value or an error that wraps the package's sentinel,
// never a panic, and what they accept must survive a round trip.

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
