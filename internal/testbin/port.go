package testbin

import (
	"fmt"
	"net"
	"sync"
)

// Ports hands out loopback ports for listeners a test starts later, from
// a block the caller owns. A port picked by binding to :0 and closing is
// from the kernel's ephemeral range, so any client connection made before
// the listener starts can take it: that was a flaky "address already in
// use". A block outside that range (or reserved from it, as
// scripts/install-deps.sh does) is taken by nobody but the tests.
type Ports struct {
	mu       sync.Mutex
	next, hi int
}

// NewPorts returns a source of the ports in [lo, hi).
func NewPorts(lo, hi int) *Ports { return &Ports{next: lo, hi: hi} }

// Next returns the next port of the block nobody listens on now.
func (p *Ports) Next() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ; p.next < p.hi; p.next++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p.next))
		if err != nil {
			continue // someone else's; try the next
		}
		ln.Close()
		port := p.next
		p.next++
		return port, nil
	}
	return 0, fmt.Errorf("testbin: no free port left below %d", p.hi)
}

// ClusterPorts is the block for cluster-tagged tests, which run one
// package at a time under the cluster lock: below the kernel's ephemeral
// range and the sandboxes' base ports.
var ClusterPorts = NewPorts(31000, 32000)
