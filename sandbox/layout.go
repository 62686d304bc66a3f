package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/internal/mariadbd"
)

const galeraProvider = "/usr/lib/galera/libgalera_smm.so"

// osUser is the account servers run as: mysql when this process is root,
// else whoever runs it (and then nothing is chowned).
type osUser struct {
	name string // "" when not root: my.cnf then has no user= line
	uid  int
	gids []int
}

func lookupServerUser() (osUser, error) {
	if os.Geteuid() != 0 {
		return osUser{uid: -1}, nil
	}
	u, err := user.Lookup("mysql")
	if err != nil {
		return osUser{}, fmt.Errorf("look up user mysql (install mariadb-server): %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return osUser{}, fmt.Errorf("user mysql has uid %q: %w", u.Uid, err)
	}
	gidStrs, err := u.GroupIds()
	if err != nil {
		gidStrs = []string{u.Gid}
	}
	out := osUser{name: "mysql", uid: uid}
	for _, g := range gidStrs {
		if n, err := strconv.Atoi(g); err == nil {
			out.gids = append(out.gids, n)
		}
	}
	return out, nil
}

// canTraverse reports whether u may enter the directory described by fi.
func (u osUser) canTraverse(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	mode := fi.Mode().Perm()
	if int(st.Uid) == u.uid {
		return mode&0o100 != 0
	}
	for _, g := range u.gids {
		if int(st.Gid) == g {
			return mode&0o010 != 0
		}
	}
	return mode&0o001 != 0
}

// ensureTraversable makes sure the server user can reach dir. dir itself
// may be opened up to 0755 (it is ours); its ancestors are only checked,
// never changed, since they belong to someone else. mariadb-install-db
// fails silently when it cannot reach the datadir, so this is checked up
// front with a message naming the directory. A dir that does not exist
// yet is checked from its nearest existing ancestor, so nothing is created
// before the check passes.
func ensureTraversable(dir string, u osUser) error {
	return ensureTraversableUpTo(dir, u, "/", true)
}

// checkAncestorsTraversable is the part of ensureTraversable that changes
// nothing: it runs before the directory is known to be a sandbox.
func checkAncestorsTraversable(dir string, u osUser) error {
	return ensureTraversableUpTo(dir, u, "/", false)
}

// ensureTraversableUpTo checks ancestors up to and including top; it opens
// dir itself only if openDir is set.
func ensureTraversableUpTo(dir string, u osUser, top string, openDir bool) error {
	if u.name == "" {
		return nil
	}
	p := dir
	for {
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Not created yet: its parent is checked next.
		case err != nil:
			return fmt.Errorf("check directory %q: %w", p, err)
		case u.canTraverse(fi):
		case p == dir && !openDir:
			// Opened later, once known to be a sandbox directory.
		case p == dir:
			if err := os.Chmod(dir, 0o755); err != nil {
				return fmt.Errorf("open sandbox directory %q to user %s: %w", dir, u.name, err)
			}
		default:
			return fmt.Errorf("directory %q (mode %04o) cannot be entered by user %s, which the servers run as: "+
				"allow it (chmod o+x %q) or choose a --dir elsewhere", p, fi.Mode().Perm(), u.name, p)
		}
		if p == top || p == filepath.Dir(p) {
			return nil
		}
		p = filepath.Dir(p)
	}
}

// chownTree gives a node directory to the server user. It runs before
// mariadb-install-db, which fails on a tmpdir or log it cannot write.
func chownTree(root string, u osUser) error {
	if u.name == "" {
		return nil
	}
	return filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(path, u.uid, u.gids0()); err != nil {
			return fmt.Errorf("give %q to user %s: %w", path, u.name, err)
		}
		return nil
	})
}

func (u osUser) gids0() int {
	if len(u.gids) == 0 {
		return -1
	}
	return u.gids[0]
}

// checkPrograms fails early, naming the package to install, when a program
// the sandbox needs is missing: a test must fail loudly, not skip.
func checkPrograms(kind nines.Kind) error {
	if err := (&mariadbd.Server{}).CheckInstalled(); err != nil {
		return err
	}
	if kind != nines.KindGalera {
		return nil
	}
	if _, err := os.Stat(galeraProvider); err != nil {
		return fmt.Errorf("find Galera provider (install galera-4): %w", err)
	}
	if _, err := exec.LookPath("rsync"); err != nil {
		return fmt.Errorf("find rsync for state transfers (install rsync): %w", err)
	}
	return nil
}

// layout computes the nodes of a new sandbox.
func layout(dir string, kind nines.Kind, n, basePort int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		name := fmt.Sprintf("n%d", i+1)
		d := filepath.Join(dir, name)
		nd := Node{
			Name:         name,
			SQLPort:      basePort + i,
			Dir:          d,
			DefaultsFile: filepath.Join(d, "my.cnf"),
			DataDir:      filepath.Join(d, "data"),
			Socket:       filepath.Join(d, "mysqld.sock"),
			PidFile:      filepath.Join(d, "mysqld.pid"),
			ErrorLog:     filepath.Join(d, "error.log"),
			AgentPort:    basePort + agentPortOffset + i,
		}
		switch {
		case kind == nines.KindNDB:
			nd.Role, nd.SQLPort = RoleNDBSQL, basePort+ndbSQLPortOffset+i
		case kind == nines.KindGalera:
			nd.Role = RoleGalera
			g := basePort + galeraPortOffset + galeraPortStride*i
			nd.GcommPort, nd.ISTPort, nd.SSTPort = g, g+1, g+2
		case i == 0:
			nd.Role = RolePrimary
		default:
			nd.Role = RoleReplica
		}
		nodes[i] = nd
	}
	return nodes
}

// DR replica ports, past the at most 10 Galera nodes' SQL and agent
// ports (P+0..9, P+200..209) and clear of Galera's (P+100..192).
const (
	drSQLPortOffset   = 90
	drAgentPortOffset = 290
	// drServerIDBase keeps DR replicas' server_id clear of the nodes'.
	drServerIDBase = 100
)

// drLayout is DR replica i (0-based) of a Galera sandbox: dr1, dr2 ...
func drLayout(dir string, basePort, i int) Node {
	name := fmt.Sprintf("dr%d", i+1)
	d := filepath.Join(dir, name)
	return Node{
		Name:         name,
		Role:         RoleReplica,
		SQLPort:      basePort + drSQLPortOffset + i,
		Dir:          d,
		DefaultsFile: filepath.Join(d, "my.cnf"),
		DataDir:      filepath.Join(d, "data"),
		Socket:       filepath.Join(d, "mysqld.sock"),
		PidFile:      filepath.Join(d, "mysqld.pid"),
		ErrorLog:     filepath.Join(d, "error.log"),
		AgentPort:    basePort + drAgentPortOffset + i,
	}
}

// maxUnixSocketPath is sun_path's size on Linux less the terminating NUL.
const maxUnixSocketPath = 107

// prepare returns the sandbox in o.Dir with every node's directory,
// my.cnf and system tables in place and every node's agent running,
// creating the sandbox if the directory holds none yet. No server is
// started.
func prepare(ctx context.Context, o Options, kind nines.Kind, defaultNodes int) (*Sandbox, error) {
	if err := checkPrograms(kind); err != nil {
		return nil, err
	}
	u, err := lookupServerUser()
	if err != nil {
		return nil, err
	}
	// Checked twice: before anything is created, and once the directory
	// is known to be a sandbox and may need opening up.
	if err := checkAncestorsTraversable(o.Dir, u); err != nil {
		return nil, err
	}
	// Resolved before anything is created: a sandbox without agents
	// could not be started.
	recorded := ""
	if old, err := Open(o.Dir); err == nil {
		recorded = old.snapshot().AgentBinary
	}
	bin, err := resolveAgentBinary(o.AgentBinary, recorded)
	if err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	s, err := Open(o.Dir)
	switch {
	case err == nil:
		if err := s.adopt(o, kind); err != nil {
			return nil, err
		}
	case errors.Is(err, ErrNoSandbox):
		if s, err = create(o, kind, defaultNodes); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	s.Log = o.Log
	s.nodeTimeout = o.NodeTimeout
	s.mu.Lock()
	s.m.AgentBinary = bin
	s.mu.Unlock()
	if err := s.setupNetwork(ctx); err != nil {
		return nil, err
	}
	if err := ensureTraversable(s.dir, u); err != nil {
		return nil, err
	}
	m := s.snapshot()
	for i, n := range m.allNodes() {
		for _, d := range []string{n.Dir, n.DataDir, filepath.Join(n.Dir, "tmp")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, fmt.Errorf("create node directory: %w", err)
			}
		}
		var cnf string
		if i < len(m.Nodes) {
			cnf = renderMyCnf(m, i, u)
		} else {
			cnf = renderDRMyCnf(m, i-len(m.Nodes), u)
		}
		if err := writeFileAtomic(n.DefaultsFile, []byte(cnf), 0o644); err != nil {
			return nil, fmt.Errorf("write my.cnf of %s: %w", n.Name, err)
		}
		if err := chownTree(n.Dir, u); err != nil {
			return nil, err
		}
	}
	if err := s.installMissing(ctx); err != nil {
		return nil, err
	}
	if _, err := ensureSecret(s.AgentTokenPath(), tokenBytes); err != nil {
		return nil, fmt.Errorf("agent token: %w", err)
	}
	if err := s.saveManifest(); err != nil {
		return nil, err
	}
	if err := s.ensureAgents(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// create lays out a new sandbox in an empty or missing directory and
// records it in sandbox.json before anything else, so that Open, and Stop,
// work from the first server on.
func create(o Options, kind nines.Kind, defaultNodes int) (*Sandbox, error) {
	if entries, err := os.ReadDir(o.Dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("create sandbox in %q: directory is not empty and holds no %s; choose an empty or new directory", o.Dir, manifestFile)
	}
	if o.Nodes == 0 {
		o.Nodes = defaultNodes
	}
	if o.BasePort == 0 {
		o.BasePort = DefaultBasePort
	}
	if o.ClusterName == "" {
		o.ClusterName = DefaultClusterName
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if kind == nines.KindGalera && o.Nodes > maxGaleraNodes {
		return nil, fmt.Errorf("create sandbox: %d Galera nodes: at most %d (their ports would reach the agents' at base port + %d)", o.Nodes, maxGaleraNodes, agentPortOffset)
	}
	top := o.BasePort + agentPortOffset + o.Nodes - 1
	if o.BasePort < 1024 || top > 65535 {
		return nil, fmt.Errorf("create sandbox: base port %d with %d nodes needs ports %d-%d: want 1024-65535", o.BasePort, o.Nodes, o.BasePort, top)
	}
	nodes := layout(o.Dir, kind, o.Nodes, o.BasePort)
	for _, n := range nodes {
		if len(n.Socket) > maxUnixSocketPath {
			return nil, fmt.Errorf("create sandbox: socket path %q is %d bytes, over the %d a unix socket allows: choose a shorter --dir", n.Socket, len(n.Socket), maxUnixSocketPath)
		}
	}
	m := manifest{Kind: kind, ClusterName: o.ClusterName, BasePort: o.BasePort, Listen: o.Listen, SemiSync: o.SemiSync, Nodes: nodes, HAProxy: o.HAProxy}
	if o.DRReplica {
		switch {
		case kind != nines.KindGalera:
			return nil, fmt.Errorf("create sandbox: a DR replica is for Galera sandboxes; a %s sandbox has replicas of its own", kind)
		case o.Netns:
			return nil, errors.New("create sandbox: a DR replica with --netns is not supported yet")
		}
		m.DRReplicas = []Node{drLayout(o.Dir, o.BasePort, 0)}
	}
	if len(o.Hosts) > 0 && !o.Netns {
		return nil, errors.New("create sandbox: hosts live in network namespaces: they need --netns")
	}
	for i, h := range o.Hosts {
		// The name goes into interface names of at most 15 bytes
		// ("nv" + 5 + name), and a link is named by it (Cut).
		if !hostNameRE.MatchString(h) || h == ApplianceName || slices.ContainsFunc(nodes, func(n Node) bool { return n.Name == h }) || slices.Contains(o.Hosts[:i], h) {
			return nil, fmt.Errorf("create sandbox: host name %q: want 1-8 lower-case letters, digits or '-', unique, and neither a node's name nor %q", h, ApplianceName)
		}
		m.Hosts = append(m.Hosts, Node{Name: h})
	}
	if o.Netns {
		subnet, err := chooseSubnet(context.Background())
		if err != nil {
			return nil, fmt.Errorf("create sandbox: %w", err)
		}
		assignNetns(&m, o.Dir, subnet)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create sandbox directory: %w", err)
	}
	s := &Sandbox{Log: o.Log, dir: o.Dir, nodeTimeout: o.NodeTimeout, m: m}
	if err := s.saveManifest(); err != nil {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	s.logf("created %s sandbox %q with %d nodes in %s", kind, o.ClusterName, o.Nodes, o.Dir)
	return s, nil
}

// adopt checks o against an existing sandbox and applies the settings that
// may change between starts (Listen, turning SemiSync on).
func (s *Sandbox) adopt(o Options, kind nines.Kind) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &s.m
	var bad []string
	if m.Kind != kind {
		bad = append(bad, fmt.Sprintf("it is a %s sandbox, not %s", m.Kind, kind))
	}
	if o.Nodes != 0 && o.Nodes != len(m.Nodes) {
		bad = append(bad, fmt.Sprintf("it has %d nodes, not %d", len(m.Nodes), o.Nodes))
	}
	if o.BasePort != 0 && o.BasePort != m.BasePort {
		bad = append(bad, fmt.Sprintf("its base port is %d, not %d", m.BasePort, o.BasePort))
	}
	if o.ClusterName != "" && o.ClusterName != m.ClusterName {
		bad = append(bad, fmt.Sprintf("its cluster is %q, not %q", m.ClusterName, o.ClusterName))
	}
	if o.DRReplica && len(m.DRReplicas) == 0 {
		bad = append(bad, "it was created without a DR replica, which can only be added to a new sandbox (it would need a copy of the data first)")
	}
	if o.Netns != m.Netns {
		bad = append(bad, fmt.Sprintf("it was started %s --netns, not %s", withOrWithout(m.Netns), withOrWithout(o.Netns)))
	}
	if len(bad) > 0 {
		return fmt.Errorf("start sandbox in %q: %s; use another directory or `nines sandbox stop` and remove it", s.dir, strings.Join(bad, ", "))
	}
	if o.Listen != "" && o.Listen != m.Listen {
		m.Listen = o.Listen
		s.listenChanged = true
	}
	if o.SemiSync {
		m.SemiSync = true
	}
	if o.HAProxy {
		m.HAProxy = true
	}
	return nil
}

func withOrWithout(b bool) string {
	if b {
		return "with"
	}
	return "without"
}

// installMissing runs mariadb-install-db on every node without system
// tables, in parallel: it is CPU-light and about a second each.
func (s *Sandbox) installMissing(ctx context.Context) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := time.Now()
	count := 0
	for _, n := range s.snapshot().allNodes() {
		srv := server(n)
		if srv.Installed() {
			continue
		}
		count++
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Install(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if count > 0 {
		s.logf("installed system tables on %d nodes in %v", count, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// checkPortsFree fails, naming port and node, when something already
// listens on a port the node is about to use. Without it a conflict shows
// only as an obscure line deep in the node's error log.
//
// A node in its own network namespace is skipped: probing 127.0.0.1 in
// the root namespace says nothing about it, and its namespace is the
// sandbox's own.
func checkPortsFree(n Node) error {
	if n.Netns != "" {
		return nil
	}
	ports := []struct {
		what string
		port int
	}{{"SQL", n.SQLPort}, {"gcomm", n.GcommPort}, {"IST", n.ISTPort}, {"SST", n.SSTPort}}
	for _, p := range ports {
		if p.port == 0 {
			continue
		}
		if err := probePort(p.port); err != nil {
			return fmt.Errorf("%s port %d of %s is in use: %w", p.what, p.port, n.Name, err)
		}
	}
	return nil
}

var hostNameRE = regexp.MustCompile(`^[a-z0-9-]{1,8}$`)
