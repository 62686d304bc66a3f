package backup

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nines-project/nines/remediator"
)

// VerifyRunbook is the "backup-verify" runbook: restore an existing
// backup on the side, on the node that holds it, and check it. Its
// parameters: id (required), node (optional: where to look; default
// every node), dir (optional: one of the cluster's configured backup
// dirs; default all of them). A failed verification fails the job.
//
// The dir is never taken from elsewhere: the agent restores what it finds
// there, so a dir named in a request must be one the plans configure.
type VerifyRunbook struct {
	Env
	MaxDuration time.Duration
}

var (
	_ remediator.Runbook     = VerifyRunbook{}
	_ remediator.Preparer    = VerifyRunbook{}
	_ remediator.Preemptible = VerifyRunbook{}
	_ remediator.Bounded     = VerifyRunbook{}
)

func (VerifyRunbook) Name() string { return remediator.RunbookBackupVerify }

// Preemptible: a repair of the cluster cancels a running verification.
func (VerifyRunbook) Preemptible() bool { return true }

func (rb VerifyRunbook) Timeout() time.Duration {
	if rb.MaxDuration > 0 {
		return rb.MaxDuration
	}
	return DefaultTimeout
}

func (rb VerifyRunbook) Prepare(cluster, target string, req map[string]string) (map[string]string, string, error) {
	out := map[string]string{}
	for k, v := range req {
		switch k {
		case "id", "node", "dir":
			out[k] = v
		default:
			return nil, "", fmt.Errorf("unknown parameter %q (a verification takes id, node and dir)", k)
		}
	}
	if !validID(out["id"]) {
		return nil, "", fmt.Errorf("backup id %q: want the id of an existing backup (nines backup list shows them)", out["id"])
	}
	if target != "" {
		out["node"] = target
	}
	if n := out["node"]; n != "" {
		hosts, err := rb.Hosts(cluster)
		if err != nil {
			return nil, "", err
		}
		if _, ok := findHost(hosts, n); !ok {
			return nil, "", fmt.Errorf("node %q is not a node of %s with an agent", n, cluster)
		}
	}
	if len(rb.Plans(cluster)) == 0 {
		return nil, "", fmt.Errorf("no backups are configured for cluster %q: a verification looks only in the dirs of its backup plans", cluster)
	}
	if err := checkPlanDir(rb.Plans(cluster), out["dir"]); err != nil {
		return nil, "", err
	}
	return out, out["node"], nil
}

// checkPlanDir accepts "" (every plan's dir) or one of the plans' dirs.
func checkPlanDir(plans []Plan, dir string) error {
	dirs := planDirs(plans)
	if dir == "" || slices.Contains(dirs, dir) {
		return nil
	}
	return fmt.Errorf("dir %q is not a backup dir of the cluster's plans (%s)", dir, strings.Join(dirs, ", "))
}

// Located is where a backup was found.
type Located struct {
	ID     string `json:"id"`
	Node   string `json:"node"`
	Dir    string `json:"dir"`
	Method string `json:"method"`
	State  string `json:"state"`
}

func (rb VerifyRunbook) Run(ctx context.Context, r *remediator.Run) error {
	id := r.Param("id")
	hosts, err := rb.Hosts(r.Cluster())
	if err != nil {
		return err
	}
	if n := r.Param("node"); n != "" {
		h, ok := findHost(hosts, n)
		if !ok {
			return fmt.Errorf("node %q is not a node of %s with an agent", n, r.Cluster())
		}
		hosts = []Host{h}
	}
	// Checked again here: a job may be resumed after the plans changed.
	if err := checkPlanDir(rb.Plans(r.Cluster()), r.Param("dir")); err != nil {
		return err
	}
	dirs := []string{r.Param("dir")}
	if dirs[0] == "" {
		dirs = planDirs(rb.Plans(r.Cluster()))
	}
	loc, err := remediator.Observe(r, "find-backup", map[string]any{"id": id, "dirs": dirs}, func(ctx context.Context) (Located, error) {
		var listErrs []string
		for _, dir := range dirs {
			all, _, err := listAll(ctx, hosts, dir)
			if err != nil {
				listErrs = append(listErrs, err.Error())
			}
			for _, b := range all {
				if b.ID == id {
					return Located{ID: id, Node: b.Holder, Dir: dir, Method: b.Method, State: b.State}, nil
				}
			}
		}
		msg := fmt.Sprintf("backup %s is on no node of %s (looked in %s)", id, r.Cluster(), strings.Join(dirs, ", "))
		if len(listErrs) > 0 {
			msg += "; " + strings.Join(listErrs, "; ")
		}
		return Located{}, fmt.Errorf("%s", msg)
	})
	if err != nil {
		return err
	}
	if loc.State != StateComplete {
		return fmt.Errorf("backup %s on %s is %s: nothing to verify", id, loc.Node, loc.State)
	}
	if loc.Method == MethodNDB {
		// A native backup: its files on every data node, checked as
		// the backup job checks them (ndb.go); no restore.
		all, err := rb.Hosts(r.Cluster())
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(id)
		if err != nil {
			return fmt.Errorf("native backup id %q: %w", id, err)
		}
		r.SetTarget("all data nodes")
		v, err := remediator.Act(ctx, r, "verify", map[string]any{"id": id, "scope": ScopeFiles}, func(ctx context.Context) (Verification, error) {
			return Verification{ID: id, Node: "all data nodes", Method: MethodNDB, Result: verifyNDBFiles(n, all, collectNDB(ctx, all, n), NDBCollected{})}, nil
		})
		if err != nil {
			return err
		}
		if err := r.Logf("verify-scope", "backup %s: %s", id, filesOnlyNote); err != nil {
			return err
		}
		if !r.DryRun() && !v.Result.OK {
			return fmt.Errorf("verification of native backup %s failed: %s", id, v.Result.Failure())
		}
		return nil
	}
	r.SetTarget(loc.Node)
	host, _ := findHost(hosts, loc.Node)
	v, err := remediator.Act(ctx, r, "verify", map[string]string{"id": id, "node": loc.Node, "dir": loc.Dir}, func(ctx context.Context) (Verification, error) {
		return verify(ctx, host, loc.Dir, id, loc.Method)
	})
	if err != nil {
		return err
	}
	if !r.DryRun() && !v.Result.OK {
		return fmt.Errorf("verification of backup %s failed: %s", id, v.Result.Failure())
	}
	return nil
}

// planDirs returns the distinct backup directories of plans, in order.
func planDirs(plans []Plan) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range plans {
		if !seen[p.Dir] {
			seen[p.Dir] = true
			out = append(out, p.Dir)
		}
	}
	return out
}
