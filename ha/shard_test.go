package ha

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func clusterNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("cluster-%d", i)
	}
	return out
}

// owners maps each cluster to its owner among members.
func owners(clusters, members []string) map[string]string {
	out := map[string]string{}
	for _, c := range clusters {
		out[c] = Owner(c, members)
	}
	return out
}

func TestOwnerSpreadsEvenly(t *testing.T) {
	clusters := clusterNames(3000)
	for _, members := range [][]string{
		{"a", "b", "c"},
		{"nines-1", "nines-2", "nines-3", "nines-4", "nines-5"},
	} {
		count := map[string]int{}
		for _, o := range owners(clusters, members) {
			count[o]++
		}
		fair := len(clusters) / len(members)
		for _, m := range members {
			// ±15 % of a fair share: a binomial spread of 3000 stays
			// well inside it; a biased hash does not.
			if n := count[m]; n < fair*85/100 || n > fair*115/100 {
				t.Errorf("members %v: %s owns %d of %d clusters, want about %d", members, m, n, len(clusters), fair)
			}
		}
		t.Logf("members %v: %v", members, count)
	}
}

func TestOwnerMovesOnlyTheLeaversClusters(t *testing.T) {
	clusters := clusterNames(600)
	before := owners(clusters, []string{"a", "b", "c", "d"})
	after := owners(clusters, []string{"a", "b", "d"}) // c died
	moved := 0
	for _, cl := range clusters {
		switch {
		case before[cl] == "c":
			moved++
			if after[cl] == "c" || after[cl] == "" {
				t.Fatalf("%s still owned by %q after c left", cl, after[cl])
			}
		case after[cl] != before[cl]:
			t.Errorf("%s moved from %s to %s though its owner stayed", cl, before[cl], after[cl])
		}
	}
	if moved == 0 {
		t.Fatal("c owned nothing: the test proves nothing")
	}
	t.Logf("c's %d clusters moved; the other %d stayed", moved, len(clusters)-moved)
}

func TestOwnerJoinTakesOnlyWhatItWins(t *testing.T) {
	clusters := clusterNames(600)
	before := owners(clusters, []string{"a", "b", "c"})
	after := owners(clusters, []string{"a", "b", "c", "e"}) // e joined
	taken := 0
	for _, cl := range clusters {
		if after[cl] != before[cl] {
			if after[cl] != "e" {
				t.Errorf("%s moved from %s to %s when e joined", cl, before[cl], after[cl])
			}
			taken++
		}
	}
	// About a quarter; at least a sixth and at most a third.
	if taken < len(clusters)/6 || taken > len(clusters)/3 {
		t.Errorf("e took %d of %d clusters, want about a quarter", taken, len(clusters))
	}
}

func TestOwnerIgnoresOrderAndEmpty(t *testing.T) {
	if o := Owner("billing", nil); o != "" {
		t.Errorf("Owner with no members = %q, want \"\"", o)
	}
	m := []string{"a", "b", "c", "d"}
	want := owners(clusterNames(50), m)
	r := slices.Clone(m)
	slices.Reverse(r)
	if got := owners(clusterNames(50), r); !maps(got, want) {
		t.Errorf("owners depend on the order of members: %v vs %v", got, want)
	}
	if o := Owner("billing", []string{"solo"}); o != "solo" {
		t.Errorf("sole member does not own: %q", o)
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestOwnsBeforeMembership: a sharded appliance that has not read the
// team's members yet (etcd unreachable since start) watches every
// cluster; one without sharding always does.
func TestOwnsBeforeMembership(t *testing.T) {
	for _, shard := range []bool{true, false} {
		e, err := New(Config{Name: "a", Endpoints: []string{"http://127.0.0.1:1"}, Lease: 5 * time.Second, Shard: shard}, []string{"billing", "iptv"})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"billing", "iptv"} {
			if !e.Owns(c) {
				t.Errorf("shard %v: Owns(%s) false before any membership", shard, c)
			}
			if o := e.Owner(c); o != "" {
				t.Errorf("shard %v: Owner(%s) = %q before any membership, want \"\"", shard, c, o)
			}
		}
		e.setMembers([]string{"b", "a"})
		if got := e.Members(); len(got) != 2 || got[0] != "a" {
			t.Errorf("Members() = %v, want [a b]", got)
		}
		if shard {
			for _, c := range []string{"billing", "iptv"} {
				if want := Owner(c, []string{"a", "b"}) == "a"; e.Owns(c) != want {
					t.Errorf("Owns(%s) = %v with members a, b; owner is %s", c, e.Owns(c), Owner(c, []string{"a", "b"}))
				}
			}
		}
		e.Close()
	}
}
