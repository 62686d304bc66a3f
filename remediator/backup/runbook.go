package backup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/remediator"
)

// DefaultTimeout bounds one backup job: the backup, its verification and
// retention. A backup of a large dataset legitimately runs for hours.
const DefaultTimeout = 6 * time.Hour

// Env is what the backup runbooks read and act through.
type Env struct {
	// Plans returns a cluster's configured backup plans.
	Plans func(cluster string) []Plan
	Hosts Hosts
	// Snapshots returns the latest snapshot of each node of a cluster.
	Snapshots func(cluster string) []*nines.Snapshot
	// Failed reports whether a backup is known to have failed
	// verification (from the job log); may be nil.
	Failed func(cluster, id string) bool
	Now    func() time.Time
	// Management returns an NDB cluster's management servers in failover
	// order (native backups); may be nil when no cluster is kind ndb.
	Management func(cluster string) ([]MgmServer, error)
}

func (e Env) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

func (e Env) plan(cluster, method string) (Plan, error) {
	plans := e.Plans(cluster)
	if len(plans) == 0 {
		return Plan{}, fmt.Errorf("no backups are configured for cluster %q (add backups: to it in the config)", cluster)
	}
	if method == "" {
		return plans[0], nil
	}
	var have []string
	for _, p := range plans {
		if p.Method == method {
			return p, nil
		}
		have = append(have, p.Method)
	}
	if !ValidMethod(method) {
		return Plan{}, fmt.Errorf("unknown method %q: want mariabackup, dump or ndb", method)
	}
	return Plan{}, fmt.Errorf("no %s backup is configured for cluster %q (configured: %s)", method, cluster, strings.Join(have, ", "))
}

// Runbook is the "backup" runbook. Its job's parameters are the plan's,
// recorded when the job is created (Prepare): method, dir, keep, max_age,
// verify, desync and node (a pin; empty lets the job choose).
//
// Steps: observe choose-node; act backup:<node> (the agent takes it);
// act verify when the plan says so (a failed verification fails the
// job); act retention over every node's backups of the cluster.
type Runbook struct {
	Env
	// MaxDuration bounds a job; default DefaultTimeout.
	MaxDuration time.Duration
}

var (
	_ remediator.Runbook     = Runbook{}
	_ remediator.Preparer    = Runbook{}
	_ remediator.Preemptible = Runbook{}
	_ remediator.Bounded     = Runbook{}
)

func (Runbook) Name() string { return remediator.RunbookBackup }

// Preemptible: a repair of the cluster cancels a running backup.
func (Runbook) Preemptible() bool { return true }

func (rb Runbook) Timeout() time.Duration {
	if rb.MaxDuration > 0 {
		return rb.MaxDuration
	}
	return DefaultTimeout
}

// params are a backup job's recorded parameters.
type params struct {
	Method string
	Dir    string
	Keep   int
	MaxAge time.Duration
	Verify bool
	Desync bool
	Node   string
	Kind   nines.Kind
}

func (p params) encode() map[string]string {
	m := map[string]string{"method": p.Method, "dir": p.Dir, "keep": strconv.Itoa(p.Keep),
		"verify": strconv.FormatBool(p.Verify), "desync": strconv.FormatBool(p.Desync), "kind": string(p.Kind)}
	if p.MaxAge > 0 {
		m["max_age"] = p.MaxAge.String()
	}
	if p.Node != "" {
		m["node"] = p.Node
	}
	return m
}

func decodeParams(get func(string) string) (params, error) {
	p := params{Method: get("method"), Dir: get("dir"), Node: get("node"), Kind: nines.Kind(get("kind"))}
	var errs []error
	var err error
	if p.Keep, err = strconv.Atoi(get("keep")); err != nil || p.Keep < 1 {
		errs = append(errs, fmt.Errorf("keep %q: want a count of at least 1", get("keep")))
	}
	if s := get("max_age"); s != "" {
		if p.MaxAge, err = time.ParseDuration(s); err != nil {
			errs = append(errs, fmt.Errorf("max_age: %w", err))
		}
	}
	p.Verify = get("verify") == "true"
	p.Desync = get("desync") == "true"
	if !ValidMethod(p.Method) {
		errs = append(errs, fmt.Errorf("method %q: want mariabackup, dump or ndb", p.Method))
	}
	// A native backup has no dir: each data node writes into its own
	// BackupDataDir.
	if p.Method != MethodNDB && !strings.HasPrefix(p.Dir, "/") {
		errs = append(errs, fmt.Errorf("dir %q: want an absolute path", p.Dir))
	}
	return p, errors.Join(errs...)
}

// Prepare completes a request from the cluster's plan for the method
// (the first plan when no method is given): a request may name the
// method and pin a node, nothing else.
func (rb Runbook) Prepare(cluster, target string, req map[string]string) (map[string]string, string, error) {
	for k := range req {
		if k != "method" && k != "node" {
			return nil, "", fmt.Errorf("unknown parameter %q (a backup takes method and node)", k)
		}
	}
	pl, err := rb.plan(cluster, req["method"])
	if err != nil {
		return nil, "", err
	}
	if pl.Method == MethodNDB {
		if target != "" || req["node"] != "" {
			return nil, "", fmt.Errorf("a native ndb backup takes no node: every data node takes part")
		}
		p := params{Method: pl.Method, Keep: pl.Keep, MaxAge: pl.MaxAge, Verify: pl.Verify, Kind: pl.Kind}
		return p.encode(), "", nil
	}
	node := target
	if node == "" {
		node = req["node"]
	}
	if node == "" {
		node = pl.Node
	}
	if node != "" {
		hosts, err := rb.Hosts(cluster)
		if err != nil {
			return nil, "", err
		}
		if _, ok := findHost(hosts, node); !ok {
			return nil, "", fmt.Errorf("node %q is not a node of %s with an agent", node, cluster)
		}
	}
	p := params{Method: pl.Method, Dir: pl.Dir, Keep: pl.Keep, MaxAge: pl.MaxAge, Verify: pl.Verify, Desync: pl.Desync, Node: node, Kind: pl.Kind}
	return p.encode(), node, nil
}

// Verification is the output of a verify step, as the job log keeps it:
// which backup, where, and what the restore found.
type Verification struct {
	ID     string       `json:"id"`
	Node   string       `json:"node"`
	Method string       `json:"method"`
	Result VerifyResult `json:"result"`
}

// RetentionResult is the output of a retention step.
type RetentionResult struct {
	Kept    []Decision `json:"kept"`
	Deleted []Decision `json:"deleted"`
	// Unlisted names the nodes whose agent could not list its backups:
	// their backups were neither counted nor deleted.
	Unlisted []string `json:"unlisted,omitempty"`
}

func (rb Runbook) Run(ctx context.Context, r *remediator.Run) error {
	p, err := decodeParams(r.Param)
	if err != nil {
		return fmt.Errorf("job parameters: %w", err)
	}
	hosts, err := rb.Hosts(r.Cluster())
	if err != nil {
		return err
	}
	if p.Method == MethodNDB {
		return rb.runNDB(ctx, r, p, hosts)
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Node
	}
	choice, err := remediator.Observe(r, "choose-node", map[string]string{"pinned": p.Node}, func(context.Context) (Choice, error) {
		return Choose(p.Kind, rb.Snapshots(r.Cluster()), names, p.Node, rb.now())
	})
	if err != nil {
		return err
	}
	host, _ := findHost(hosts, choice.Node)
	r.SetTarget(choice.Node)

	started := rb.now()
	req := Request{Method: p.Method, Dir: p.Dir, Desync: p.Desync, ID: NewID(started, p.Method, choice.Node)}
	m, err := remediator.Act(ctx, r, "backup:"+choice.Node, req, func(ctx context.Context) (Manifest, error) {
		m, err := host.Agent.Backup(ctx, req)
		if err != nil {
			return m, fmt.Errorf("%s backup on %s: %w", p.Method, choice.Node, err)
		}
		return m, nil
	})
	if err != nil {
		return err
	}
	if m.ID != "" {
		req.ID = m.ID // a resumed job returns the recorded backup
	}
	if p.Verify {
		v, err := remediator.Act(ctx, r, "verify", map[string]string{"id": req.ID, "node": choice.Node, "dir": p.Dir}, func(ctx context.Context) (Verification, error) {
			return verify(ctx, host, p.Dir, req.ID, p.Method)
		})
		if err != nil {
			return err
		}
		if !r.DryRun() && !v.Result.OK {
			return fmt.Errorf("verification of backup %s failed: %s", req.ID, v.Result.Failure())
		}
	}
	pol := Policy{Method: p.Method, Keep: p.Keep, MaxAge: p.MaxAge}
	res, err := remediator.Act(ctx, r, "retention", pol, func(ctx context.Context) (RetentionResult, error) {
		return rb.retain(ctx, r.Cluster(), hosts, p.Dir, pol, started)
	})
	if err != nil {
		return err
	}
	if len(res.Unlisted) > 0 {
		return r.Logf("retention-partial", "the backups of %s could not be listed; retention there waits for the next run", strings.Join(res.Unlisted, ", "))
	}
	return nil
}

func verify(ctx context.Context, h Host, dir, id, method string) (Verification, error) {
	res, err := h.Agent.Verify(ctx, dir, id)
	if err != nil {
		return Verification{}, fmt.Errorf("verify backup %s on %s: %w", id, h.Node, err)
	}
	return Verification{ID: id, Node: h.Node, Method: method, Result: res}, nil
}

// listAll lists dir on every host; the nodes whose agent failed are
// returned by name, with the errors.
func listAll(ctx context.Context, hosts []Host, dir string) ([]Info, []string, error) {
	var all []Info
	var failed []string
	var errs []error
	for _, h := range hosts {
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		infos, err := h.Agent.List(lctx, dir)
		cancel()
		if err != nil {
			failed = append(failed, h.Node)
			errs = append(errs, fmt.Errorf("list backups on %s: %w", h.Node, err))
			continue
		}
		for _, in := range infos {
			in.Holder, in.Dir = h.Node, dir
			all = append(all, in)
		}
	}
	return all, failed, errors.Join(errs...)
}

// retain applies retention: list, decide, delete through each holder's
// agent. A deletion that fails fails the step (the disk would fill), after
// every other deletion was tried.
func (rb Runbook) retain(ctx context.Context, cluster string, hosts []Host, dir string, pol Policy, started time.Time) (RetentionResult, error) {
	all, unlisted, _ := listAll(ctx, hosts, dir)
	var failed func(string) bool
	if rb.Failed != nil {
		failed = func(id string) bool { return rb.Failed(cluster, id) }
	}
	keep, del := Retain(all, pol, rb.now(), started, failed)
	res := RetentionResult{Kept: keep, Unlisted: unlisted}
	var errs []error
	for _, d := range del {
		h, ok := findHost(hosts, d.Holder)
		if !ok {
			continue
		}
		if err := h.Agent.Delete(ctx, dir, d.ID); err != nil {
			errs = append(errs, fmt.Errorf("delete backup %s on %s: %w", d.ID, d.Holder, err))
			continue
		}
		res.Deleted = append(res.Deleted, d)
	}
	sort.Slice(res.Deleted, func(i, j int) bool { return res.Deleted[i].ID < res.Deleted[j].ID })
	return res, errors.Join(errs...)
}
