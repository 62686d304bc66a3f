package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nines-project/nines/galera"
)

// peerDialTimeout bounds one connection attempt to a peer's Galera port.
const peerDialTimeout = time.Second

// PeersResult is GET /v1/peers: which Galera peers this host reaches, a
// vantage point for the remediator's quorum decision. The peers are those
// of wsrep_cluster_address in the server's option file, this node's own
// address included (reached only while its server runs).
type PeersResult struct {
	ClusterAddress string      `json:"cluster_address"`
	Peers          []PeerReach `json:"peers"`
}

// PeerReach is one peer's Galera port as seen from this host.
type PeerReach struct {
	Address   string `json:"address"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
}

func (a *Agent) peers(ctx context.Context, _ struct{}) (PeersResult, error) {
	if !a.cfg.IsGalera() {
		return PeersResult{}, badRequest(errors.New("not a Galera server (server.galera is false)"))
	}
	cnf, err := readOptionFiles(a.srv.DefaultsFile, 0)
	if err != nil {
		return PeersResult{}, fmt.Errorf("peers: %w", err)
	}
	res := PeersResult{ClusterAddress: galera.ClusterAddressOf(cnf)}
	addrs, err := galera.ParseClusterAddress(res.ClusterAddress)
	if err != nil {
		return res, fmt.Errorf("peers: %s: %w", a.srv.DefaultsFile, err)
	}
	res.Peers = dialAll(ctx, addrs)
	return res, nil
}

// readOptionFiles returns an option file with its !include and
// !includedir files appended in the server's order (Debian's my.cnf keeps
// the Galera settings in conf.d files).
func readOptionFiles(path string, depth int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil || depth > 3 {
		return b, err
	}
	out := append([]byte(nil), b...)
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		var files []string
		if f, ok := strings.CutPrefix(line, "!includedir "); ok {
			files, _ = filepath.Glob(filepath.Join(strings.TrimSpace(f), "*.cnf"))
			sort.Strings(files)
		} else if f, ok := strings.CutPrefix(line, "!include "); ok {
			files = []string{strings.TrimSpace(f)}
		}
		for _, f := range files {
			inc, err := readOptionFiles(f, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(append(out, '\n'), inc...)
		}
	}
	return out, nil
}

// dialAll tries every address's TCP port at once.
func dialAll(ctx context.Context, addrs []string) []PeerReach {
	out := make([]PeerReach, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = PeerReach{Address: addr}
			d := net.Dialer{Timeout: peerDialTimeout}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			c.Close()
			out[i].Reachable = true
		}()
	}
	wg.Wait()
	return out
}
