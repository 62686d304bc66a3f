package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/nines-project/nines/internal/durable"
)

// Fencing (several appliances, issue 15): the appliance that leads a
// cluster sends its etcd leadership's fencing token with every request
// that may change something (every POST and DELETE). The agent keeps the
// highest token it has seen per cluster in FenceFile under its state dir,
// written and fsynced before the request acts, and refuses a lower one
// with 409 naming both: a leader that lost its lease while paused can
// never act after its successor did, even after an agent restart.
//
// A request without a token is served only while the agent has never seen
// one (for any cluster): a lone appliance, the sandbox and an operator's
// tooling keep working as before, but once appliances in HA have acted
// through this agent, a request that carries no token (a deposed leader
// of an older version, a script) is refused.
const (
	HeaderFenceCluster = "X-Nines-Cluster"
	HeaderFenceToken   = "X-Nines-Fencing-Token"
	// FenceFile holds the highest token per cluster, as JSON.
	FenceFile = "fencing.json"
)

// headerFenced marks a 409 as a fencing refusal (Error.Fenced).
const headerFenced = "X-Nines-Fenced"

// openFence loads the tokens from the state dir.
func (a *Agent) openFence() error {
	dir := a.cfg.StateDir
	if dir == "" {
		dir = DefaultStateDir
	}
	f, err := openFencer(filepath.Join(dir, FenceFile))
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.fencing = f
	return nil
}

type fenceKey struct{}

// fence is what a context carries to the client.
type fence struct {
	cluster string
	token   int64
}

// WithFence returns ctx carrying cluster's fencing token: every mutating
// call the Client makes under it sends the token. A token <= 0 leaves
// ctx as it is.
func WithFence(ctx context.Context, cluster string, token int64) context.Context {
	if token <= 0 {
		return ctx
	}
	return context.WithValue(ctx, fenceKey{}, fence{cluster, token})
}

// setFence adds ctx's fencing token, if any, to a mutating request.
func setFence(ctx context.Context, req *http.Request) {
	f, ok := ctx.Value(fenceKey{}).(fence)
	if !ok || req.Method == http.MethodGet {
		return
	}
	req.Header.Set(HeaderFenceCluster, f.cluster)
	req.Header.Set(HeaderFenceToken, strconv.FormatInt(f.token, 10))
}

// IsFenced reports whether err is the agent refusing a stale fencing
// token (or a missing one): a newer leader acts on the cluster.
func IsFenced(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusConflict && e.Fenced
}

// fencer checks and records tokens; safe for concurrent use.
type fencer struct {
	path string
	mu   sync.Mutex
	seen map[string]int64
}

// openFencer reads path (a missing file is an agent that never saw a
// token); a file that does not parse is an error, not a reset: forgetting
// the tokens would let a deposed leader act again.
func openFencer(path string) (*fencer, error) {
	f := &fencer{path: path, seen: map[string]int64{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return f, nil
	case err != nil:
		return nil, fmt.Errorf("read fencing tokens: %w", err)
	}
	if err := json.Unmarshal(b, &f.seen); err != nil {
		return nil, fmt.Errorf("read fencing tokens %s: %w (fix or remove it only if no appliance in HA uses this agent)", path, err)
	}
	return f, nil
}

// check admits a request carrying (or not) a token, recording a higher
// one durably before it returns; the error is a 409 or 400 to answer.
func (f *fencer) check(r *http.Request) error {
	cluster, tok := r.Header.Get(HeaderFenceCluster), r.Header.Get(HeaderFenceToken)
	f.mu.Lock()
	defer f.mu.Unlock()
	if tok == "" && cluster == "" {
		if len(f.seen) == 0 {
			return nil
		}
		return &httpError{http.StatusConflict, fmt.Errorf("fencing: a request without a fencing token, but appliances in HA act through this agent (highest tokens %v): only the cluster's current leader may act", f.seen)}
	}
	n, err := strconv.ParseInt(tok, 10, 64)
	if err != nil || n <= 0 || cluster == "" {
		return badRequest(fmt.Errorf("fencing: %s %q and %s %q: both are needed, the token a positive integer", HeaderFenceCluster, cluster, HeaderFenceToken, tok))
	}
	high := f.seen[cluster]
	switch {
	case n < high:
		return &httpError{http.StatusConflict, fmt.Errorf("fencing: token %d for cluster %q is older than %d, the highest seen: a newer leader acts on this cluster", n, cluster, high)}
	case n == high:
		return nil
	}
	next := make(map[string]int64, len(f.seen)+1)
	for k, v := range f.seen {
		next[k] = v
	}
	next[cluster] = n
	if err := writeFileSync(f.path, next); err != nil {
		return fmt.Errorf("fencing: record token %d for cluster %q: %w", n, cluster, err)
	}
	f.seen = next
	return nil
}

// writeFileSync replaces path with v as JSON, durably (the directory is
// created if missing), so a crash leaves the old or the new tokens, never
// none.
func writeFileSync(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return durable.WriteFile(path, b)
}
