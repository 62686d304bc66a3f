package config

import (
	"fmt"
	"net/netip"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Prefixes is a list of CIDRs; a bare address is its own /32 or /128.
type Prefixes []netip.Prefix

// UnmarshalYAML parses the list. A bad entry becomes a *yaml.TypeError
// with its line, so every problem is reported at once.
func (p *Prefixes) UnmarshalYAML(n *yaml.Node) error {
	var raw []string
	if err := n.Decode(&raw); err != nil {
		return err
	}
	var bad []string
	out := make(Prefixes, 0, len(raw))
	for i, s := range raw {
		pr, err := parsePrefix(s)
		if err != nil {
			bad = append(bad, fmt.Sprintf("line %d: trusted_proxies[%d]: %q is not a CIDR (10.0.0.0/8) or an address", n.Content[i].Line, i, s))
			continue
		}
		out = append(out, pr)
	}
	if len(bad) > 0 {
		return &yaml.TypeError{Errors: bad}
	}
	*p = out
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
