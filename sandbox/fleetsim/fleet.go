// Package fleetsim simulates a fleet of MariaDB Galera nodes cheaply
// enough to run a thousand on one small machine, for the fleet benchmark
// and fleet tests: each node is a TCP listener speaking the MySQL protocol
// well enough for nines' scraper (handshake, SHOW GLOBAL STATUS, SHOW
// GLOBAL VARIABLES with its WHERE ... IN form, SET, SELECT 1, ping), with
// the status and variables a real MariaDB 10.11 Galera node returns
// (captured from one: status.tsv, variables.tsv), counters that grow, and
// Galera values that agree across the nodes of a cluster.
//
// It is not a database: every other statement gets an error naming it, so
// a scraper that starts asking for more is noticed, not fed nonsense.
package fleetsim

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Options shape a fleet.
type Options struct {
	// Nodes in all; ClusterSize per cluster (default 3). The last cluster
	// is smaller when Nodes is not a multiple.
	Nodes       int
	ClusterSize int
	// Node i serves on 127.0.0.1:BasePort+i.
	BasePort int
	// User and Password are what clients must log in with
	// (mysql_native_password).
	User, Password string
	Logger         *slog.Logger
}

// Fleet is a running set of simulated nodes.
type Fleet struct {
	opts  Options
	start time.Time
	nodes []*node
	lns   []net.Listener

	queries atomic.Uint64
	conns   atomic.Uint64
	connID  atomic.Uint32

	wg     sync.WaitGroup
	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
}

// Start listens on every node's port; it fails, closing what it opened,
// when one port is taken.
func Start(o Options) (*Fleet, error) {
	if o.Nodes <= 0 {
		return nil, errors.New("fleetsim: nodes must be positive")
	}
	if o.ClusterSize <= 0 {
		o.ClusterSize = 3
	}
	if o.BasePort <= 0 || o.BasePort+o.Nodes > 65535 {
		return nil, fmt.Errorf("fleetsim: base port %d cannot hold %d nodes", o.BasePort, o.Nodes)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	tmpl, err := loadTemplates()
	if err != nil {
		return nil, err
	}
	f := &Fleet{opts: o, start: time.Now(), open: map[net.Conn]struct{}{}}
	for i := range o.Nodes {
		f.nodes = append(f.nodes, newNode(tmpl, o, i, f.start))
	}
	for _, n := range f.nodes {
		ln, err := net.Listen("tcp", n.addr)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("fleetsim: node %s: %w", n.name, err)
		}
		f.lns = append(f.lns, ln)
		f.wg.Add(1)
		go f.serve(ln, n)
	}
	return f, nil
}

// Clusters lists each cluster's name and node addresses, in order.
func (f *Fleet) Clusters() []Cluster {
	var out []Cluster
	for _, n := range f.nodes {
		if n.index == 0 {
			out = append(out, Cluster{Name: n.clusterName})
		}
		c := &out[len(out)-1]
		c.Nodes = append(c.Nodes, n.addr)
	}
	return out
}

// Cluster is one simulated cluster.
type Cluster struct {
	Name  string
	Nodes []string
}

// Queries is the number of statements answered since Start.
func (f *Fleet) Queries() uint64 { return f.queries.Load() }

// Connections is the number of logins accepted since Start.
func (f *Fleet) Connections() uint64 { return f.conns.Load() }

// Close stops every listener and connection and waits for them.
func (f *Fleet) Close() error {
	f.mu.Lock()
	f.closed = true
	for c := range f.open {
		_ = c.Close()
	}
	f.mu.Unlock()
	for _, ln := range f.lns {
		_ = ln.Close()
	}
	f.wg.Wait()
	return nil
}

func (f *Fleet) serve(ln net.Listener, n *node) {
	defer f.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			_ = c.Close()
			return
		}
		f.open[c] = struct{}{}
		f.wg.Add(1)
		f.mu.Unlock()
		go func() {
			defer f.wg.Done()
			defer func() {
				f.mu.Lock()
				delete(f.open, c)
				f.mu.Unlock()
				_ = c.Close()
			}()
			if err := f.session(c, n); err != nil && !errors.Is(err, net.ErrClosed) {
				f.opts.Logger.Debug("session ended", "node", n.name, "err", err)
			}
		}()
	}
}

// session runs one client connection: handshake, then commands until
// COM_QUIT or the connection ends.
func (f *Fleet) session(nc net.Conn, n *node) error {
	c := &conn{r: bufio.NewReaderSize(nc, 4096), w: bufio.NewWriterSize(nc, 64<<10)}
	scramble := make([]byte, 20)
	if _, err := rand.Read(scramble); err != nil {
		return err
	}
	// A scramble byte must not be NUL: the greeting carries it as a
	// NUL-terminated string's worth.
	for i := range scramble {
		scramble[i] = scramble[i]%94 + 33
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	c.writePacket(greeting(n.version, f.connID.Add(1), scramble))
	if err := c.flush(); err != nil {
		return err
	}
	p, err := c.readPacket()
	if err != nil {
		return err
	}
	h, err := parseHandshakeResponse(p)
	if err != nil {
		return c.writeErr(1043, "08S01", "Bad handshake: "+err.Error())
	}
	if h.user != f.opts.User || (h.plugin != "" && h.plugin != nativePassword) || !nativeAuthOK(h.auth, scramble, f.opts.Password) {
		return c.writeErr(1045, "28000", fmt.Sprintf("Access denied for user '%s'@'127.0.0.1' (using password: YES)", h.user))
	}
	if err := c.writeOK(); err != nil {
		return err
	}
	f.conns.Add(1)
	_ = nc.SetDeadline(time.Time{})
	for {
		p, err := c.readPacket()
		if err != nil {
			return err
		}
		if len(p) == 0 {
			return errors.New("empty command packet")
		}
		switch p[0] {
		case comQuit:
			return nil
		case comPing, comInitDB:
			err = c.writeOK()
		case comQuery:
			f.queries.Add(1)
			rs, ok, qerr := n.answer(string(p[1:]), time.Now())
			switch {
			case qerr != nil:
				err = c.writeErr(1235, "42000", qerr.Error())
			case ok:
				err = c.writeOK()
			default:
				err = c.writeResultSet(rs)
			}
		default:
			err = c.writeErr(1047, "08S01", fmt.Sprintf("fleetsim: command 0x%02x not simulated", p[0]))
		}
		if err != nil {
			return err
		}
	}
}

// Run serves until ctx ends, then closes the fleet.
func (f *Fleet) Run(ctx context.Context) error {
	<-ctx.Done()
	return f.Close()
}
