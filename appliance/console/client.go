package console

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// clientAddr is the address a login is limited and logged by: the peer,
// or, when the peer is one of the trusted proxies, the rightmost address
// in X-Forwarded-For that is not a trusted proxy. Anybody can send
// X-Forwarded-For, so it counts only as far as trusted proxies wrote it:
// each appends the address it received from.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	peer := peerHost(r)
	ip, err := netip.ParseAddr(peer)
	if err != nil || !isTrusted(ip, trusted) {
		return peer
	}
	hops := forwardedFor(r)
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(hops[i])
		if err != nil {
			return peer // garbled: the proxy's own address is all we know
		}
		if !isTrusted(hop, trusted) {
			return hop.String()
		}
	}
	return peer
}

// peerHost is the peer's address as the listener saw it.
func peerHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// forwardedFor is every X-Forwarded-For entry in order, over all the
// header's lines.
func forwardedFor(r *http.Request) []string {
	var out []string
	for _, line := range r.Header.Values("X-Forwarded-For") {
		for _, part := range strings.Split(line, ",") {
			if p := strings.TrimSpace(part); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	ip = ip.Unmap()
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Login attempts per client address: a burst, then one a second. Checked
// before the shared password-check slots, so one address flooding logins
// with random names cannot take every slot from the others.
const (
	addrBurst    = 10
	addrRate     = rate.Limit(1)
	addrIdle     = 10 * time.Minute // a limiter unused this long is dropped
	maxAddresses = 10000            // and at most this many are kept
)

// addrLimiter holds one token bucket per client address.
type addrLimiter struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]*addrEntry
}

type addrEntry struct {
	lim  *rate.Limiter
	last time.Time
}

func newAddrLimiter(now func() time.Time) *addrLimiter {
	return &addrLimiter{now: now, m: map[string]*addrEntry{}}
}

// allow takes one attempt from addr's bucket.
func (l *addrLimiter) allow(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e, ok := l.m[addr]
	if !ok {
		l.makeRoom(now)
		e = &addrEntry{lim: rate.NewLimiter(addrRate, addrBurst)}
		l.m[addr] = e
	}
	e.last = now
	return e.lim.AllowN(now, 1)
}

// makeRoom drops idle limiters, and the least recently used one when the
// map is still full, so a spray of addresses cannot grow it without bound.
func (l *addrLimiter) makeRoom(now time.Time) {
	if len(l.m) < maxAddresses {
		return
	}
	var oldest string
	for a, e := range l.m {
		if now.Sub(e.last) >= addrIdle {
			delete(l.m, a)
		} else if oldest == "" || e.last.Before(l.m[oldest].last) {
			oldest = a
		}
	}
	if len(l.m) >= maxAddresses {
		delete(l.m, oldest)
	}
}
