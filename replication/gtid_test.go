package replication

import (
	"reflect"
	"testing"
)

func TestErrant(t *testing.T) {
	primary, err := ParseState("0-1-100, 0-2-7")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		replica string
		want    []string
	}{
		{"0-1-100,0-2-7", nil},
		{"0-1-120,0-2-7", nil},                     // ahead of a stale reading of the primary's own stream: fine
		{"0-1-90", nil},                            // behind
		{"0-1-100,0-2-7,0-3-2", []string{"0-3-2"}}, // written on the replica (server 3)
		{"0-1-100,0-2-9", []string{"0-2-9"}},       // more of an old primary's history than the primary has
		{"", nil},
	}
	for _, tt := range tests {
		r, err := ParseState(tt.replica)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Errant(primary, 1); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q.Errant = %v, want %v", tt.replica, got, tt.want)
		}
	}
	for _, bad := range []string{"0-1", "a-b-c", "0-1-2-3", "0-99999999999-1"} {
		if _, err := ParseState(bad); err == nil {
			t.Errorf("ParseState(%q) accepted", bad)
		}
	}
}

func FuzzParseState(f *testing.F) {
	f.Add("0-1-100,1-2-7")
	f.Add(" 0-1-1 , ")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseState(s)
		if err == nil && st == nil {
			t.Fatal("nil state without error")
		}
		if err == nil {
			// What String writes, ParseState reads back the same.
			again, err := ParseState(st.String())
			if err != nil || !reflect.DeepEqual(again, st) {
				t.Fatalf("%q -> %q -> %v, %v", s, st.String(), again, err)
			}
		}
	})
}
