package alertmanager

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/prometheus/alertmanager/cluster"
)

// Cluster makes several embedded Alertmanagers (one per appliance) one
// Alertmanager cluster with Alertmanager's own gossip (hashicorp
// memberlist): silences and the notification log are replicated, so an
// alert that every appliance evaluates pages once, and a silence made on
// one appliance mutes the others. It is upstream's --cluster.* set.
type Cluster struct {
	// Listen is the gossip address, host:port (TCP and UDP).
	Listen string
	// Advertise is the address peers reach this one at; empty means
	// Listen's, which must then be a specific address.
	Advertise string
	// Peers are the other members' gossip addresses.
	Peers []string
	// Name is this peer's name in the cluster; empty means a random one.
	// Peers take turns by name to notify (see PeerTimeout).
	Name string
	// Label is sent on every packet; peers with another label are
	// ignored, so two appliance teams on one network never merge.
	Label string
	// PeerTimeout is how long each peer waits per peer before it in name
	// order before notifying, so the first notifies and the others find
	// its entry in the gossiped notification log. Zero is upstream's 15 s.
	PeerTimeout time.Duration
	// GossipInterval and PushPullInterval: zero are upstream's 200 ms and
	// 1 m.
	GossipInterval   time.Duration
	PushPullInterval time.Duration
	// TLS secures the gossip with mutual TLS; required by the appliance
	// config unless Listen is a loopback address.
	TLS *ClusterTLS
}

// ClusterTLS is the gossip's mutual TLS: this peer's certificate and key,
// and the CA that signed every peer's.
type ClusterTLS struct {
	CertFile string
	KeyFile  string
	CAFile   string
}

// Defaults of Cluster's zero fields, upstream's.
const (
	DefaultPeerTimeout = 15 * time.Second
	settleTimeout      = cluster.DefaultPushPullInterval
	leaveTimeout       = 5 * time.Second
)

func (c *Cluster) defaults() Cluster {
	o := *c
	if o.PeerTimeout == 0 {
		o.PeerTimeout = DefaultPeerTimeout
	}
	if o.GossipInterval == 0 {
		o.GossipInterval = cluster.DefaultGossipInterval
	}
	if o.PushPullInterval == 0 {
		o.PushPullInterval = cluster.DefaultPushPullInterval
	}
	return o
}

// transport is the memberlist TLS transport's configuration, or nil for
// plain TCP/UDP.
func (t *ClusterTLS) transport() *cluster.TLSTransportConfig {
	if t == nil {
		return nil
	}
	return &cluster.TLSTransportConfig{
		TLSServerConfig: &web.TLSConfig{
			TLSCertPath: t.CertFile,
			TLSKeyPath:  t.KeyFile,
			ClientCAs:   t.CAFile,
			ClientAuth:  "RequireAndVerifyClientCert",
		},
		TLSClientConfig: &commoncfg.TLSConfig{
			CAFile:   t.CAFile,
			CertFile: t.CertFile,
			KeyFile:  t.KeyFile,
		},
	}
}

// gossip is a running cluster peer.
type gossip struct {
	peer        *cluster.Peer
	peerTimeout time.Duration
	settle      context.CancelFunc
}

// newPeer creates the memberlist peer; it joins in join, once the states
// that are gossiped have been added.
func newPeer(c Cluster, e *Embedded) (*gossip, error) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return nil, fmt.Errorf("alertmanager: cluster listen address %q: %w", c.Listen, err)
	}
	p, err := cluster.Create(e.logger.With("component", "cluster"), e.reg,
		c.Listen, c.Advertise, c.Peers, true,
		c.PushPullInterval, c.GossipInterval, cluster.DefaultTCPTimeout,
		cluster.DefaultResolvePeersTimeout, cluster.DefaultProbeTimeout, cluster.DefaultProbeInterval,
		c.TLS.transport(), false, c.Label, c.Name)
	if err != nil {
		return nil, fmt.Errorf("alertmanager: cluster on %s: %w", c.Listen, err)
	}
	return &gossip{peer: p, peerTimeout: c.PeerTimeout, settle: func() {}}, nil
}

// join joins the known peers and settles in the background; a peer that
// cannot be reached now is joined again by the cluster package's refresh
// (every 15 s it joins each configured peer that is not a live member),
// so a lone appliance still starts and notifies, and peers find each other
// again after a partition.
//
// Its reconnect loop stays off (interval 0): it reads a failed peer's
// memberlist.Node while memberlist rewrites that node when the peer comes
// back alive, a data race in Alertmanager's cluster package (reported
// upstream as prometheus/alertmanager#2033) that the race detector caught
// in the partition drill. With static peers, refresh does the same work.
func (g *gossip) join(c Cluster, logger interface{ Warn(string, ...any) }) {
	if err := g.peer.Join(0, cluster.DefaultReconnectTimeout); err != nil {
		logger.Warn("alertmanager: cannot join the gossip peers yet; retrying", "peers", c.Peers, "err", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	g.settle = cancel
	go g.peer.Settle(ctx, c.GossipInterval*10)
}

// wait is how long this peer holds a notification back: one PeerTimeout
// per peer before it in name order.
func (g *gossip) wait() time.Duration {
	if g == nil {
		return 0
	}
	return time.Duration(g.peer.Position()) * g.peerTimeout
}

func (g *gossip) leave() {
	if g == nil {
		return
	}
	g.settle()
	_ = g.peer.Leave(leaveTimeout)
}

// ClusterStatus is this peer's view of the gossip cluster.
type ClusterStatus struct {
	Name     string   `json:"name"`
	Position int      `json:"position"`
	Ready    bool     `json:"ready"`
	Peers    []string `json:"peers"`
}

// ClusterStatus reports the gossip cluster, or an error without one.
func (e *Embedded) ClusterStatus() (ClusterStatus, error) {
	if e.gossip == nil {
		return ClusterStatus{}, errors.New("alertmanager: not clustered")
	}
	p := e.gossip.peer
	st := ClusterStatus{Name: p.Name(), Position: p.Position(), Ready: p.Ready()}
	for _, m := range p.Peers() {
		st.Peers = append(st.Peers, m.Name()+"@"+m.Address())
	}
	return st, nil
}
