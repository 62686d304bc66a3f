package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// Partition scopes for Isolate.
const (
	// PartitionNodes cuts a node from every other node, both ways.
	PartitionNodes = "nodes"
	// PartitionAppliance cuts a node from the root namespace, where the
	// appliance runs (the bridge address), both ways.
	PartitionAppliance = "appliance"
	// PartitionAll is both.
	PartitionAll = "all"
)

// ApplianceName names the root namespace's end of a link in Cut, Mend and
// NodeStatus.Cut.
const ApplianceName = "appliance"

// ipProgram is iproute2's ip.
const ipProgram = "/usr/sbin/ip"

// ErrNotNetns means a partition was asked of a sandbox without network
// namespaces.
var ErrNotNetns = errors.New("not started with --netns")

// netnsSubnetPrefix is the private range the sandboxes' /24s come from:
// 10.213.X.0/24, X in 0..254.
const netnsSubnetPrefix = "10.213."

// netID is the short hash of the sandbox's absolute directory that every
// namespace, veth and bridge name of the sandbox carries.
func netID(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return hex.EncodeToString(sum[:])[:5]
}

// Interface and namespace names. Interface names are at most 15 bytes:
// "nb"+5 = 7, "nv"+5+"n10" = 10.
func netnsName(id, node string) string { return "nines-" + id + "-" + node }
func bridgeName(id string) string      { return "nb" + id }
func vethName(id, node string) string  { return "nv" + id + node }
func vethPeerName(id, node string) string {
	return "np" + id + node // renamed eth0 once inside the namespace
}

// subnetAddr is host h of the /24 subnet ("10.213.X.0/24").
func subnetAddr(subnet string, h int) string {
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return ""
	}
	a := p.Addr().As4()
	a[3] = byte(h)
	return netip.AddrFrom4(a).String()
}

// bridgeIP is the root namespace's address on the sandbox's bridge.
func bridgeIP(subnet string) string { return subnetAddr(subnet, 1) }

// nodeIP is node i's (0-based) address.
func nodeIP(subnet string, i int) string { return subnetAddr(subnet, 10+i) }

// subnetHostPattern is the subnet as a MariaDB account host ('10.213.X.%').
func subnetHostPattern(subnet string) string {
	ip := bridgeIP(subnet)
	return ip[:strings.LastIndexByte(ip, '.')+1] + "%"
}

// pickSubnet returns the first 10.213.X.0/24 that no prefix in used
// overlaps.
func pickSubnet(used []netip.Prefix) (string, error) {
	for x := 0; x <= 254; x++ {
		cand := netip.MustParsePrefix(fmt.Sprintf("%s%d.0/24", netnsSubnetPrefix, x))
		if !slices.ContainsFunc(used, cand.Overlaps) {
			return cand.String(), nil
		}
	}
	return "", fmt.Errorf("no free %sX.0/24 for the sandbox's network: every one overlaps an address of this host", netnsSubnetPrefix)
}

// parseAddrs reads the prefixes out of `ip -o -4 addr` output, keyed by
// interface name.
func parseAddrs(out string) map[string][]netip.Prefix {
	res := map[string][]netip.Prefix{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[2] != "inet" {
			continue
		}
		p, err := netip.ParsePrefix(f[3])
		if err != nil {
			continue
		}
		res[f[1]] = append(res[f[1]], p.Masked())
	}
	return res
}

func hostAddrs(ctx context.Context) (map[string][]netip.Prefix, error) {
	out, err := runIP(ctx, "-o", "-4", "addr")
	if err != nil {
		return nil, err
	}
	return parseAddrs(out), nil
}

// chooseSubnet picks the /24 of a new netns sandbox.
func chooseSubnet(ctx context.Context) (string, error) {
	addrs, err := hostAddrs(ctx)
	if err != nil {
		return "", err
	}
	var used []netip.Prefix
	for _, ps := range addrs {
		used = append(used, ps...)
	}
	return pickSubnet(used)
}

// runIP runs ip with args and returns its output; the error holds its
// stderr.
func runIP(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ipProgram, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func linkExists(ctx context.Context, ns, name string) bool {
	args := []string{"link", "show", "dev", name}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	_, err := runIP(ctx, args...)
	return err == nil
}

func netnsExists(name string) bool {
	_, err := os.Stat("/run/netns/" + name)
	return err == nil
}

// checkNetnsAllowed refuses --netns to a caller that cannot create
// namespaces.
func checkNetnsAllowed() error { return checkNetnsAllowedFor(os.Geteuid()) }

func checkNetnsAllowedFor(euid int) error {
	if euid != 0 {
		return errors.New("sandbox: --netns needs root: it creates network namespaces")
	}
	if _, err := os.Stat(ipProgram); err != nil {
		return fmt.Errorf("sandbox: --netns needs %s (install iproute2): %w", ipProgram, err)
	}
	return nil
}

// assignNetns gives a new sandbox's nodes their namespaces and addresses.
func assignNetns(m *manifest, dir, subnet string) {
	id := netID(dir)
	m.Netns, m.Subnet, m.Bridge = true, subnet, bridgeName(id)
	for i := range m.Nodes {
		m.Nodes[i].Netns = netnsName(id, m.Nodes[i].Name)
		m.Nodes[i].IP = nodeIP(subnet, i)
	}
	for i := range m.Hosts {
		m.Hosts[i].Netns = netnsName(id, m.Hosts[i].Name)
		m.Hosts[i].IP = subnetAddr(subnet, 100+i)
	}
}

// namespaced is every end of the network that has a namespace of its
// own: the nodes, then the hosts.
func (m manifest) namespaced() []Node { return append(slices.Clone(m.Nodes), m.Hosts...) }

// setupNetwork creates what is missing of the sandbox's network: the
// bridge with its address, and per node the namespace, the veth pair (host
// side on the bridge, eth0 with the node's address inside) and lo. On
// error, what exists of the network is removed again.
func (s *Sandbox) setupNetwork(ctx context.Context) error {
	m := s.snapshot()
	if !m.Netns {
		return nil
	}
	if err := s.buildNetwork(ctx, m); err != nil {
		if terr := s.teardownNetwork(context.WithoutCancel(ctx)); terr != nil {
			s.logf("remove the half-made network: %v", terr)
		}
		return fmt.Errorf("set up the network namespaces of sandbox %q: %w", s.dir, err)
	}
	return nil
}

func (s *Sandbox) buildNetwork(ctx context.Context, m manifest) error {
	t0 := time.Now()
	id := netID(s.dir)
	created := 0
	if !linkExists(ctx, "", m.Bridge) {
		// The recorded /24 may have been taken since the sandbox stopped.
		addrs, err := hostAddrs(ctx)
		if err != nil {
			return err
		}
		sub := netip.MustParsePrefix(m.Subnet)
		for ifc, ps := range addrs {
			if slices.ContainsFunc(ps, sub.Overlaps) {
				return fmt.Errorf("subnet %s recorded in %s is in use on interface %s; stop what uses it or make a new sandbox", m.Subnet, manifestFile, ifc)
			}
		}
		if _, err := runIP(ctx, "link", "add", m.Bridge, "type", "bridge"); err != nil {
			return err
		}
		created++
	}
	steps := [][]string{
		{"addr", "replace", bridgeIP(m.Subnet) + "/24", "dev", m.Bridge},
		{"link", "set", m.Bridge, "up"},
	}
	for _, st := range steps {
		if _, err := runIP(ctx, st...); err != nil {
			return err
		}
	}
	for _, n := range m.namespaced() {
		if !netnsExists(n.Netns) {
			if _, err := runIP(ctx, "netns", "add", n.Netns); err != nil {
				return err
			}
			created++
		}
		host, peer := vethName(id, n.Name), vethPeerName(id, n.Name)
		if !linkExists(ctx, n.Netns, "eth0") {
			if linkExists(ctx, "", host) {
				if _, err := runIP(ctx, "link", "del", host); err != nil {
					return err
				}
			}
			if _, err := runIP(ctx, "link", "add", host, "type", "veth", "peer", "name", peer, "netns", n.Netns); err != nil {
				return err
			}
			if _, err := runIP(ctx, "-n", n.Netns, "link", "set", peer, "name", "eth0"); err != nil {
				return err
			}
			created++
		}
		steps := [][]string{
			{"link", "set", host, "master", m.Bridge},
			{"link", "set", host, "up"},
			{"-n", n.Netns, "addr", "replace", n.IP + "/24", "dev", "eth0"},
			{"-n", n.Netns, "link", "set", "eth0", "up"},
			{"-n", n.Netns, "link", "set", "lo", "up"},
		}
		for _, st := range steps {
			if _, err := runIP(ctx, st...); err != nil {
				return err
			}
		}
	}
	if created > 0 {
		s.logf("network %s: bridge %s (%s), %d namespaces, set up in %v", m.Subnet, m.Bridge, bridgeIP(m.Subnet), len(m.namespaced()), time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// teardownNetwork removes the sandbox's namespaces, veths and bridge,
// whichever exist; all of them carry the sandbox's own id, so nothing
// else is touched.
func (s *Sandbox) teardownNetwork(ctx context.Context) error {
	m := s.snapshot()
	if !m.Netns {
		return nil
	}
	id := netID(s.dir)
	var errs []error
	removed := 0
	for _, n := range m.namespaced() {
		// Deleting the host side removes the pair even when a process
		// still holds the namespace.
		if host := vethName(id, n.Name); linkExists(ctx, "", host) {
			if _, err := runIP(ctx, "link", "del", host); err != nil {
				errs = append(errs, err)
			}
		}
		if n.Netns != "" && netnsExists(n.Netns) {
			if _, err := runIP(ctx, "netns", "del", n.Netns); err != nil {
				errs = append(errs, err)
			} else {
				removed++
			}
		}
	}
	if m.Bridge != "" && linkExists(ctx, "", m.Bridge) {
		if _, err := runIP(ctx, "link", "del", m.Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	if removed > 0 {
		s.logf("removed network %s: %d namespaces and bridge %s", m.Subnet, removed, m.Bridge)
	}
	return errors.Join(errs...)
}

// netnsManifest returns the manifest of a netns sandbox, or the error a
// partition gets on any other.
func (s *Sandbox) netnsManifest() (manifest, error) {
	m := s.snapshot()
	if !m.Netns {
		return m, fmt.Errorf("sandbox in %s was not started with --netns: %w", s.dir, ErrNotNetns)
	}
	return m, nil
}

// endpoint is one end of a link: a node or the appliance (Node zero).
type endpoint struct {
	name string
	node Node
	ip   string
}

func (s *Sandbox) endpoint(m manifest, name string) (endpoint, error) {
	if name == ApplianceName {
		return endpoint{name: name, ip: bridgeIP(m.Subnet)}, nil
	}
	for _, n := range m.namespaced() {
		if n.Name == name {
			return endpoint{name: name, node: n, ip: n.IP}, nil
		}
	}
	return endpoint{}, fmt.Errorf("%q is not a node or host of sandbox %q (%s, or %s): %w", name, s.dir, strings.Join(NodeNames(m.namespaced()), ", "), ApplianceName, ErrUnknownNode)
}

// Host returns the network namespace and address of one of
// Options.Hosts.
func (s *Sandbox) Host(name string) (netns, ip string, err error) {
	for _, h := range s.snapshot().Hosts {
		if h.Name == name {
			return h.Netns, h.IP, nil
		}
	}
	return "", "", fmt.Errorf("host %q of sandbox %q: %w", name, s.dir, ErrUnknownNode)
}

// BridgeIP is the root namespace's address on a --netns sandbox's bridge:
// where the nodes and hosts reach what runs outside them.
func (s *Sandbox) BridgeIP() string { return bridgeIP(s.snapshot().Subnet) }

// NodeNames lists the nodes' names in order.
func NodeNames(nodes []Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}

// blackholes reads the blackhole routes in a node's namespace: the
// addresses it cannot reach. A namespace that does not exist has none.
func blackholes(ctx context.Context, ns string) ([]string, error) {
	if !netnsExists(ns) {
		return nil, nil
	}
	out, err := runIP(ctx, "-n", ns, "-4", "route", "show", "type", "blackhole")
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "blackhole" {
			ips = append(ips, strings.TrimSuffix(f[1], "/32"))
		}
	}
	return ips, nil
}

// setRoute adds (cut) or removes a blackhole route to ip in from's
// namespace, doing nothing when it is already so.
func (s *Sandbox) setRoute(ctx context.Context, from endpoint, to endpoint, cut bool) error {
	have, err := blackholes(ctx, from.node.Netns)
	if err != nil {
		return err
	}
	if slices.Contains(have, to.ip) == cut {
		return nil
	}
	if cut {
		if _, err := runIP(ctx, "-n", from.node.Netns, "route", "replace", "blackhole", to.ip+"/32"); err != nil {
			return err
		}
		s.logf("cut %s -> %s (blackhole %s in %s)", from.name, to.name, to.ip, from.node.Netns)
		return nil
	}
	if _, err := runIP(ctx, "-n", from.node.Netns, "route", "del", "blackhole", to.ip+"/32"); err != nil {
		return err
	}
	s.logf("mended %s -> %s", from.name, to.name)
	return nil
}

// link cuts or mends the link between a and b both ways. The appliance
// side needs no route: what a node sends to the bridge address dies in
// the node's namespace, replies included.
func (s *Sandbox) link(ctx context.Context, a, b string, cut bool) error {
	m, err := s.netnsManifest()
	if err != nil {
		return err
	}
	ea, err := s.endpoint(m, a)
	if err != nil {
		return err
	}
	eb, err := s.endpoint(m, b)
	if err != nil {
		return err
	}
	if a == b {
		return fmt.Errorf("link %s:%s: a link joins two different ends", a, b)
	}
	if a == ApplianceName {
		ea, eb = eb, ea
	}
	if err := s.setRoute(ctx, ea, eb, cut); err != nil {
		return err
	}
	if eb.name == ApplianceName {
		return nil
	}
	return s.setRoute(ctx, eb, ea, cut)
}

// Cut cuts the network link between a and b, both ways; either may be
// "appliance", the root namespace. Cutting a cut link is no error.
func (s *Sandbox) Cut(ctx context.Context, a, b string) error { return s.link(ctx, a, b, true) }

// Mend restores the link Cut cut. Mending a whole link is no error.
func (s *Sandbox) Mend(ctx context.Context, a, b string) error { return s.link(ctx, a, b, false) }

// Isolate cuts node from the others (from PartitionNodes), from the
// appliance (PartitionAppliance) or from both (PartitionAll).
func (s *Sandbox) Isolate(ctx context.Context, node, from string) error {
	m, err := s.netnsManifest()
	if err != nil {
		return err
	}
	if _, err := s.endpoint(m, node); err != nil || node == ApplianceName {
		return fmt.Errorf("isolate: %q is not a node (nodes: %s): %w", node, strings.Join(NodeNames(m.Nodes), ", "), ErrUnknownNode)
	}
	var peers []string
	switch from {
	case PartitionNodes, PartitionAll:
		for _, n := range m.Nodes {
			if n.Name != node {
				peers = append(peers, n.Name)
			}
		}
		if from == PartitionAll {
			peers = append(peers, ApplianceName)
		}
	case PartitionAppliance:
		peers = []string{ApplianceName}
	default:
		return fmt.Errorf("isolate %s from %q: want %s, %s or %s", node, from, PartitionNodes, PartitionAppliance, PartitionAll)
	}
	for _, p := range peers {
		if err := s.Cut(ctx, node, p); err != nil {
			return err
		}
	}
	return nil
}

// Heal removes every cut of the sandbox.
func (s *Sandbox) Heal(ctx context.Context) error {
	m, err := s.netnsManifest()
	if err != nil {
		return err
	}
	return s.heal(ctx, m)
}

func (s *Sandbox) heal(ctx context.Context, m manifest) error {
	sub, err := netip.ParsePrefix(m.Subnet)
	if err != nil {
		return fmt.Errorf("heal: subnet %q in %s: %w", m.Subnet, manifestFile, err)
	}
	var errs []error
	for _, n := range m.namespaced() {
		ips, err := blackholes(ctx, n.Netns)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ip := range ips {
			a, err := netip.ParseAddr(ip)
			if err != nil || !sub.Contains(a) {
				continue // not ours
			}
			if _, err := runIP(ctx, "-n", n.Netns, "route", "del", "blackhole", ip+"/32"); err != nil {
				errs = append(errs, err)
				continue
			}
			s.logf("mended %s -> %s", n.Name, nameOfIP(m, ip))
		}
	}
	return errors.Join(errs...)
}

// nameOfIP names the end of the sandbox's network that has ip.
func nameOfIP(m manifest, ip string) string {
	if ip == bridgeIP(m.Subnet) {
		return ApplianceName
	}
	for _, n := range m.namespaced() {
		if n.IP == ip {
			return n.Name
		}
	}
	return ip
}

// cutsOf lists the ends node's links to are cut, sorted.
func cutsOf(ctx context.Context, m manifest, n Node) []string {
	ips, err := blackholes(ctx, n.Netns)
	if err != nil {
		return nil
	}
	var out []string
	for _, ip := range ips {
		out = append(out, nameOfIP(m, ip))
	}
	slices.Sort(out)
	return slices.Compact(out)
}
