package config

import (
	"fmt"
	"net/url"
	"time"
)

// DefaultHALease is the etcd lease of an appliance in HA: how long a dead
// or paused leader keeps its clusters before another appliance takes
// them. 5 s keeps a takeover within 10 s while riding out a short stall.
const DefaultHALease = 5 * time.Second

// HA is the ha: block: several appliances watching the same clusters,
// each cluster acted on only by the holder of its etcd lease.
//
//	ha: {name: nines-a, etcd: [http://etcd1:2379, ...], lease: 5s}
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
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			at(fmt.Sprintf("ha.etcd[%d]", i), "bad URL %q: want http(s)://host:port", u)
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
