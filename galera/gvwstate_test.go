package galera

import (
	"errors"
	"strings"
	"testing"
)

const (
	memberA = "0dae1307-1606-11e4-aa94-5255b1455aa0"
	memberB = "47bbe2e2-1606-11e4-8593-2a6d8335bc79"
	memberC = "d3124bc8-1605-11e4-aa3d-ab44303c044a"
)

// gvwstate is the file of member C of a 3-node Primary component, in the
// layout Galera writes.
const gvwstate = `my_uuid: ` + memberC + `
#vwbeg
view_id: 3 ` + memberA + ` 12
bootstrap: 0
member: ` + memberA + ` 0
member: ` + memberB + ` 0
member: ` + memberC + ` 1
#vwend
`

func TestParseGvwstate(t *testing.T) {
	g, err := ParseGvwstate([]byte(gvwstate))
	if err != nil {
		t.Fatal(err)
	}
	if g.MyUUID != memberC || g.View != (ViewID{Type: ViewPrimary, UUID: memberA, Seq: 12}) || g.Bootstrap {
		t.Errorf("parsed %+v", g)
	}
	want := []Member{{memberA, 0}, {memberB, 0}, {memberC, 1}}
	if len(g.Members) != len(want) {
		t.Fatalf("members %+v, want %+v", g.Members, want)
	}
	for i := range want {
		if g.Members[i] != want[i] {
			t.Errorf("member %d = %+v, want %+v", i, g.Members[i], want[i])
		}
	}
	if !g.Has(memberB) || g.Has(UndefinedUUID) {
		t.Error("Has is wrong")
	}

	crlf, err := ParseGvwstate([]byte(strings.ReplaceAll(gvwstate, "\n", "\r\n")))
	if err != nil || crlf.MyUUID != memberC || len(crlf.Members) != 3 {
		t.Errorf("CRLF line ends: %+v, %v", crlf, err)
	}
}

func TestParseGvwstateRefusesDamage(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{"empty", "", "no my_uuid line"},
		{"truncated in the view", gvwstate[:strings.Index(gvwstate, "#vwend")], "no #vwend"},
		{"no view block", "my_uuid: " + memberC + "\n", "no #vwbeg"},
		{"no view_id", strings.Replace(gvwstate, "view_id: 3 "+memberA+" 12\n", "", 1), "no view_id line"},
		{"non-Primary view", strings.Replace(gvwstate, "view_id: 3", "view_id: 2", 1), "view type 2 is not Primary"},
		{"self not a member", strings.Replace(gvwstate, "member: "+memberC+" 1\n", "", 1), "is not a member of the view"},
		{"member twice", strings.Replace(gvwstate, "member: "+memberB, "member: "+memberA, 1), "line 6: member " + memberA + " listed twice"},
		{"bad member uuid", strings.Replace(gvwstate, "member: "+memberB, "member: 47bbe2e2", 1), "line 6: member: uuid"},
		{"bad segment", strings.Replace(gvwstate, memberC+" 1", memberC+" 300", 1), `line 7: member segment "300" is not 0 to 255`},
		{"bad view type", strings.Replace(gvwstate, "view_id: 3", "view_id: 7", 1), `line 3: view_id type "7" is not 0 to 3`},
		{"bad seq", strings.Replace(gvwstate, " 12\n", " -4\n", 1), `line 3: view_id seq "-4"`},
		{"bad bootstrap", strings.Replace(gvwstate, "bootstrap: 0", "bootstrap: yes", 1), `line 4: bootstrap "yes" is neither 0 nor 1`},
		{"member outside the block", gvwstate + "member: " + memberB + " 0\n", "line 9: member outside"},
		{"two views", gvwstate + "#vwbeg\n", "line 9: a second #vwbeg"},
		{"no colon", "my_uuid " + memberC + "\n", `line 1: "my_uuid ` + memberC + `" is not "key: value"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseGvwstate([]byte(tt.file))
			if !errors.Is(err, ErrBadGvwstate) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one wrapping ErrBadGvwstate containing %q", err, tt.want)
			}
		})
	}
}
