package testbin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// EtcdBinary is Debian's etcd-server (scripts/install-deps.sh installs it).
const EtcdBinary = "/usr/bin/etcd"

// Etcd is a one-member etcd on loopback for one test.
type Etcd struct {
	URL string // client URL
	dir string
	cmd *exec.Cmd
}

// StartEtcd starts a one-member etcd with ports from ports and waits until
// it answers /health. A missing binary is an error, never a skip. Call
// Stop.
func StartEtcd(ctx context.Context, ports *Ports) (*Etcd, error) {
	return StartEtcdOn(ctx, ports, "127.0.0.1")
}

// StartEtcdOn is StartEtcd listening on host: a sandbox bridge's address,
// for appliances in network namespaces.
func StartEtcdOn(ctx context.Context, ports *Ports, host string) (*Etcd, error) {
	return startEtcd(ctx, ports, host, nil)
}

// EtcdTLS is the server side of etcd's client TLS: its certificate and
// key, and the CA whose client certificates it requires
// (--client-cert-auth).
type EtcdTLS struct {
	CertFile, KeyFile, CAFile string
	// Client is a certificate the CA signed, for the health check.
	Client tls.Certificate
}

// StartEtcdTLS is StartEtcdOn serving clients over https with client
// certificate authentication (the peer link stays on plain http: there
// is one member).
func StartEtcdTLS(ctx context.Context, ports *Ports, host string, t EtcdTLS) (*Etcd, error) {
	return startEtcd(ctx, ports, host, &t)
}

func startEtcd(ctx context.Context, ports *Ports, host string, t *EtcdTLS) (*Etcd, error) {
	if _, err := os.Stat(EtcdBinary); err != nil {
		return nil, fmt.Errorf("etcd server: %w (install the etcd-server package: scripts/install-deps.sh)", err)
	}
	client, err := ports.Next()
	if err != nil {
		return nil, err
	}
	peer, err := ports.Next()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nines-etcd-")
	if err != nil {
		return nil, err
	}
	scheme := "http"
	hc := http.DefaultClient
	if t != nil {
		scheme = "https"
		ca, err := os.ReadFile(t.CAFile)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{t.Client}}}}
	}
	e := &Etcd{URL: fmt.Sprintf("%s://%s:%d", scheme, host, client), dir: dir}
	peerURL := fmt.Sprintf("http://%s:%d", host, peer)
	out, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	args := []string{"--name", "t", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", e.URL, "--advertise-client-urls", e.URL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "t=" + peerURL}
	if t != nil {
		args = append(args, "--cert-file", t.CertFile, "--key-file", t.KeyFile,
			"--trusted-ca-file", t.CAFile, "--client-cert-auth")
	}
	e.cmd = exec.Command(EtcdBinary, args...)
	e.cmd.Stdout, e.cmd.Stderr = out, out
	if err := e.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get(e.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return e, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			e.Stop()
			return nil, fmt.Errorf("etcd on %s not healthy after 20 s: %v (log in %s)", e.URL, err, filepath.Join(dir, "etcd.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Pause freezes etcd (SIGSTOP): clients see it as unreachable; Resume
// continues it.
func (e *Etcd) Pause() error  { return e.cmd.Process.Signal(syscall.SIGSTOP) }
func (e *Etcd) Resume() error { return e.cmd.Process.Signal(syscall.SIGCONT) }

// Stop kills etcd and removes its directory.
func (e *Etcd) Stop() {
	if e.cmd != nil && e.cmd.Process != nil {
		_ = e.cmd.Process.Signal(syscall.SIGCONT)
		_ = e.cmd.Process.Kill()
		if err := e.cmd.Wait(); err != nil && !errors.As(err, new(*exec.ExitError)) {
			fmt.Fprintf(os.Stderr, "testbin: etcd: %v\n", err)
		}
	}
	os.RemoveAll(e.dir)
}
