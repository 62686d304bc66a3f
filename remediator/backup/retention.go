package backup

import (
	"fmt"
	"sort"
	"time"
)

// Policy is what retention keeps of one method's backups.
type Policy struct {
	Method string        `json:"method"`
	Keep   int           `json:"keep"`
	MaxAge time.Duration `json:"max_age,omitempty"`
}

// Decision is what retention does with one backup, and why.
type Decision struct {
	ID     string `json:"id"`
	Holder string `json:"holder"`
	Dir    string `json:"dir,omitempty"`
	Why    string `json:"why"`
}

// Retain decides which of a cluster's backups (every node's list,
// merged) to keep and which to delete. Only backups of p.Method count.
//
//   - Complete backups not known to have failed verification are kept,
//     newest first, up to p.Keep; beyond that, and older than p.MaxAge
//     when set, they go. The newest complete one always stays, whatever
//     its age: a cluster must never be left without a backup by
//     retention.
//   - A backup whose verification failed does not count towards Keep (it
//     cannot be restored), so it never pushes out a good one. It stays
//     for inspection while it is newer than the oldest good backup kept,
//     and among the newest Keep of its kind.
//   - An incomplete backup (interrupted, failed) that is not being
//     written (Running) and started before notBefore (the start of the current job's own backup) goes: it is
//     not in progress, and only takes space.
//
// failed reports whether a backup is known to have failed verification;
// nil means none did. The same backup listed by several agents (a shared
// directory) is decided once.
func Retain(all []Info, p Policy, now, notBefore time.Time, failed func(id string) bool) (keep, del []Decision) {
	var good, bad, incomplete []Info
	for _, b := range merge(all) {
		if b.Method != p.Method {
			continue
		}
		switch {
		case !b.Complete():
			incomplete = append(incomplete, b)
		case failed != nil && failed(b.ID):
			bad = append(bad, b)
		default:
			good = append(good, b)
		}
	}
	newestFirst := func(bs []Info) {
		sort.SliceStable(bs, func(i, j int) bool {
			if !bs[i].StartedAt.Equal(bs[j].StartedAt) {
				return bs[i].StartedAt.After(bs[j].StartedAt)
			}
			return bs[i].ID > bs[j].ID
		})
	}
	newestFirst(good)
	newestFirst(bad)
	newestFirst(incomplete)
	dec := func(b Info, why string, args ...any) Decision {
		return Decision{ID: b.ID, Holder: b.Holder, Dir: b.Dir, Why: fmt.Sprintf(why, args...)}
	}

	var oldestKept time.Time
	for i, b := range good {
		age := now.Sub(b.StartedAt)
		switch {
		case i == 0:
			keep = append(keep, dec(b, "the newest complete backup"))
		case i >= p.Keep:
			del = append(del, dec(b, "beyond the %d newest complete backups", p.Keep))
			continue
		case p.MaxAge > 0 && age > p.MaxAge:
			del = append(del, dec(b, "older than max_age %s (%s)", p.MaxAge, age.Round(time.Second)))
			continue
		default:
			keep = append(keep, dec(b, "among the %d newest complete backups", p.Keep))
		}
		oldestKept = b.StartedAt
	}
	for i, b := range bad {
		switch {
		case i >= p.Keep:
			del = append(del, dec(b, "failed verification, and beyond the %d newest of those", p.Keep))
		case !oldestKept.IsZero() && b.StartedAt.Before(oldestKept):
			del = append(del, dec(b, "failed verification, and older than every good backup kept"))
		default:
			keep = append(keep, dec(b, "failed verification; kept for inspection until good backups replace it"))
		}
	}
	for _, b := range incomplete {
		if b.Running {
			keep = append(keep, dec(b, "being written now"))
		} else if b.StartedAt.Before(notBefore) {
			del = append(del, dec(b, "incomplete (interrupted or failed)"))
		} else {
			keep = append(keep, dec(b, "incomplete but started after this job's backup: possibly in progress"))
		}
	}
	return keep, del
}

// merge folds the listings of one backup by several agents (a directory
// they share) into one: complete when any agent has its manifest, running
// when the agent writing it says so (the others cannot know). The first
// listing's holder is kept. Order is kept.
func merge(all []Info) []Info {
	at := map[string]int{}
	var out []Info
	for _, b := range all {
		i, ok := at[b.ID]
		if !ok {
			at[b.ID] = len(out)
			if b.NDB != nil {
				// Each data node lists its own part of a native
				// backup: the entry gathers them (mergeNDB).
				nb := *b.NDB
				nb.Nodes = append([]NDBNodeFiles(nil), b.NDB.Nodes...)
				for k := range nb.Nodes {
					if nb.Nodes[k].Holder == "" {
						nb.Nodes[k].Holder = b.Holder
					}
				}
				b.NDB = &nb
				b.Files = append([]File(nil), b.Files...)
			}
			out = append(out, b)
			continue
		}
		if out[i].NDB != nil && b.NDB != nil {
			mergeNDB(&out[i], b)
			continue
		}
		if !out[i].Complete() && b.Complete() {
			holder, dir, running := out[i].Holder, out[i].Dir, out[i].Running
			out[i] = b
			out[i].Holder, out[i].Dir, out[i].Running = holder, dir, running
		}
		out[i].Running = out[i].Running || b.Running
	}
	return out
}
