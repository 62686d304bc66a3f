package backup

import (
	"slices"
	"testing"
	"time"
)

// bk is a backup of method started `ago` before now on holder, complete
// unless state says otherwise.
func bk(id, method string, ago time.Duration, holder, state string) Info {
	if state == "" {
		state = StateComplete
	}
	return Info{Manifest: Manifest{ID: id, Method: method, StartedAt: t0.Add(-ago)}, State: state, Holder: holder}
}

func ids(ds []Decision) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	slices.Sort(out)
	return out
}

func TestRetain(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name     string
		all      []Info
		pol      Policy
		failed   []string
		wantKeep []string
		wantDel  []string
	}{
		{"keep the newest two of four, across nodes",
			[]Info{bk("d1", "dump", 4*day, "n1", ""), bk("d2", "dump", 3*day, "n2", ""), bk("d3", "dump", 2*day, "n1", ""), bk("d4", "dump", day, "n3", "")},
			Policy{Method: "dump", Keep: 2}, nil,
			[]string{"d3", "d4"}, []string{"d1", "d2"}},
		{"other methods untouched",
			[]Info{bk("m1", "mariabackup", 9*day, "n1", ""), bk("d1", "dump", 2*day, "n1", ""), bk("d2", "dump", day, "n1", "")},
			Policy{Method: "dump", Keep: 1}, nil,
			[]string{"d2"}, []string{"d1"}},
		{"max_age removes old ones within keep",
			[]Info{bk("d1", "dump", 20*day, "n1", ""), bk("d2", "dump", 10*day, "n1", ""), bk("d3", "dump", day, "n1", "")},
			Policy{Method: "dump", Keep: 7, MaxAge: 14 * day}, nil,
			[]string{"d2", "d3"}, []string{"d1"}},
		{"the newest complete one stays whatever its age",
			[]Info{bk("d1", "dump", 40*day, "n1", ""), bk("d2", "dump", 30*day, "n1", "")},
			Policy{Method: "dump", Keep: 7, MaxAge: 14 * day}, nil,
			[]string{"d2"}, []string{"d1"}},
		{"a backup that failed verification does not count",
			[]Info{bk("d1", "dump", 3*day, "n1", ""), bk("d2", "dump", 2*day, "n1", ""), bk("bad", "dump", day, "n1", "")},
			Policy{Method: "dump", Keep: 2}, []string{"bad"},
			[]string{"bad", "d1", "d2"}, nil},
		{"a failed one older than every good one kept goes",
			[]Info{bk("bad", "dump", 3*day, "n1", ""), bk("d1", "dump", 2*day, "n1", ""), bk("d2", "dump", day, "n1", "")},
			Policy{Method: "dump", Keep: 2}, []string{"bad"},
			[]string{"d1", "d2"}, []string{"bad"}},
		{"incomplete ones from before this run go, running ones stay",
			[]Info{bk("old", "dump", 2*day, "n1", StateIncomplete), bk("d1", "dump", day, "n1", ""),
				func() Info { b := bk("now", "dump", 0, "n2", StateIncomplete); b.Running = true; return b }()},
			Policy{Method: "dump", Keep: 2}, nil,
			[]string{"d1", "now"}, []string{"old"}},
		{"running says the agent writing it, not the others sharing the directory",
			[]Info{bk("w", "dump", 2*day, "n1", StateIncomplete), func() Info { b := bk("w", "dump", 2*day, "n3", StateIncomplete); b.Running = true; return b }(),
				bk("d1", "dump", day, "n1", "")},
			Policy{Method: "dump", Keep: 2}, nil,
			[]string{"d1", "w"}, nil},
		{"one backup in a shared directory is decided once",
			[]Info{bk("d1", "dump", 2*day, "n1", ""), bk("d1", "dump", 2*day, "n2", ""), bk("d2", "dump", day, "n1", "")},
			Policy{Method: "dump", Keep: 1}, nil,
			[]string{"d2"}, []string{"d1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed := func(id string) bool { return slices.Contains(tt.failed, id) }
			keep, del := Retain(tt.all, tt.pol, t0, t0.Add(-time.Minute), failed)
			if got := ids(keep); !slices.Equal(got, tt.wantKeep) {
				t.Errorf("keep %v, want %v", got, tt.wantKeep)
			}
			if got := ids(del); !slices.Equal(got, tt.wantDel) {
				t.Errorf("delete %v, want %v", got, tt.wantDel)
			}
			for _, d := range append(keep, del...) {
				if d.Why == "" || d.Holder == "" {
					t.Errorf("decision %+v lacks its reason or holder", d)
				}
			}
		})
	}
}
