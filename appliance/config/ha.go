package config

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nines-project/nines/internal/secret"
)

// DefaultHALease is the etcd lease of an appliance in HA: how long a dead
// or paused leader keeps its clusters before another appliance takes
// them. 5 s keeps a takeover within 10 s while riding out a short stall.
const DefaultHALease = 5 * time.Second

// HA is the ha: block: several appliances watching the same clusters,
// each cluster acted on only by the holder of its etcd lease.
//
//	ha: {name: nines-a, etcd: [https://etcd1:2379, ...], lease: 5s, tls: {ca_file: etcd-ca.pem}}
//
// Without it the appliance runs alone.
type HA struct {
	// Name identifies this appliance among the others; unique per team.
	Name string `yaml:"name"`
	// Etcd are the etcd cluster's client URLs.
	Etcd []string `yaml:"etcd"`
	// Lease is the leadership lease, whole seconds; default 5s.
	Lease Duration `yaml:"lease"`
	// Shard spreads the clusters over the live appliances (rendezvous
	// hashing over the team's members in etcd): each scrapes, probes,
	// alerts on and campaigns for only its own; a dead appliance's
	// clusters move to the others once its lease ends. The fleet view
	// comes from the shared store, so it needs store: and remote_write.
	Shard bool `yaml:"shard"`
	// TLS checks etcd's https endpoints against a private CA and gives
	// the client certificate etcd asks for (--client-cert-auth). The
	// leases and fencing tokens that decide who may act travel this
	// link, so http:// is accepted only to a loopback etcd.
	TLS       *secret.ClientTLS `yaml:"tls"`
	TLSConfig *tls.Config       `yaml:"-"`
}

// checkHA checks the ha: block, if any, and fills its default.
func (c *Config) checkHA(at func(path, format string, args ...any)) {
	h := c.HA
	if h == nil {
		return
	}
	if h.Name == "" {
		at("ha.name", "required: each appliance of the team needs its own name")
	} else if !validName(h.Name) {
		at("ha.name", "%q: use letters, digits, '-' and '_' only", h.Name)
	}
	if len(h.Etcd) == 0 {
		at("ha.etcd", "at least one etcd client URL is required")
	}
	for i, u := range h.Etcd {
		p := fmt.Sprintf("ha.etcd[%d]", i)
		pu, err := url.Parse(u)
		switch {
		case err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "":
			at(p, "bad URL %q: want http(s)://host:port", u)
		case pu.Scheme == "http" && !isLoopback(pu.Hostname()):
			at(p, "%q is http:// to a host other than loopback: leases and fencing tokens would cross the network in clear text; use https:// (ha.tls for a private CA and a client certificate)", u)
		case pu.Scheme == "http" && h.TLS != nil:
			at(p, "%q is http://, but ha.tls is set: use https://, or drop ha.tls", u)
		}
	}
	if h.Lease.Duration == 0 {
		h.Lease.Duration = DefaultHALease
	}
	switch d := h.Lease.Duration; {
	case d < time.Second:
		at("ha.lease", "%s is shorter than 1s, the smallest etcd lease", d)
	case d%time.Second != 0:
		at("ha.lease", "%s: etcd leases are whole seconds", d)
	case d > time.Minute:
		at("ha.lease", "%s: a dead leader would keep its clusters unrepaired that long; at most 1m", d)
	}
	if h.Shard {
		// Each appliance scrapes only its share: without a store they all
		// write to and read from, no console would show the whole fleet
		// and rules would lose a cluster's history when it moves.
		if c.Store == nil {
			at("ha.shard", "needs store: {url: ...}, the query API of the store every appliance remote_writes to")
		}
		if len(c.RemoteWrite) == 0 {
			at("ha.shard", "needs remote_write to the shared store: each appliance's clusters reach the others only through it")
		}
	}
}

// readHATLS reads ha.tls into HA.TLSConfig. An https endpoint without
// ha.tls is checked against the system's roots.
func (c *Config) readHATLS(at func(path, format string, args ...any)) {
	h := c.HA
	if h == nil {
		return
	}
	if h.TLS != nil {
		h.TLSConfig = c.readClientTLS(h.TLS, "ha.tls", at)
		return
	}
	for _, u := range h.Etcd {
		if strings.HasPrefix(u, "https://") {
			h.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			return
		}
	}
}
