package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/testpki"
)

func TestLoadHA(t *testing.T) {
	cfg, err := Load(writeConfig(t, good+"ha: {name: nines-a, etcd: [\"http://127.0.0.1:2379\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HA == nil || cfg.HA.Name != "nines-a" || cfg.HA.Lease.Duration != 5*time.Second {
		t.Fatalf("ha = %+v, want name nines-a and the default lease 5s", cfg.HA)
	}
	sharded, err := Load(writeConfig(t, good+"ha: {name: nines-a, etcd: [\"http://127.0.0.1:2379\"], shard: true}\n"+
		"store: {url: \"http://127.0.0.1:8428\"}\nremote_write:\n  - {url: \"http://127.0.0.1:8428/api/v1/write\"}\n"))
	if err != nil || !sharded.HA.Shard {
		t.Fatalf("ha with shard, store and remote_write: %+v, %v; want shard on", sharded.HA, err)
	}
	alone, err := Load(writeConfig(t, good))
	if err != nil || alone.HA != nil {
		t.Fatalf("without ha: %+v, %v; want none", alone.HA, err)
	}
}

func TestLoadHATLS(t *testing.T) {
	ca := testpki.NewCA(t, "etcd CA")
	pair := ca.Client(t, "nines-a")
	dir := t.TempDir()
	caFile := testpki.Write(t, filepath.Join(dir, "ca.pem"), ca.PEM())
	cert := testpki.Write(t, filepath.Join(dir, "a.crt"), pair.CertPEM)
	key := testpki.Write(t, filepath.Join(dir, "a.key"), pair.KeyPEM)
	cfg, err := Load(writeConfig(t, good+fmt.Sprintf("ha: {name: nines-a, etcd: [\"https://10.0.0.2:2379\"], tls: {ca_file: %s, cert_file: %s, key_file: %s}}\n", caFile, cert, key)))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.HA.TLSConfig; c == nil || c.RootCAs == nil || len(c.Certificates) != 1 {
		t.Fatalf("ha.tls read as %+v, want the CA and one client certificate", c)
	}
	roots, err := Load(writeConfig(t, good+"ha: {name: nines-a, etcd: [\"https://10.0.0.2:2379\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := roots.HA.TLSConfig; c == nil || c.RootCAs != nil {
		t.Fatalf("https without ha.tls: %+v, want TLS against the system's roots", c)
	}
}

func TestLoadRejectsHA(t *testing.T) {
	for _, tt := range []struct {
		ha, field, msg string
	}{
		{`{etcd: ["http://e:2379"]}`, "ha.name", "required"},
		{`{name: "a b", etcd: ["http://e:2379"]}`, "ha.name", `"a b": use letters`},
		{`{name: a}`, "ha.etcd", "at least one etcd client URL"},
		{`{name: a, etcd: ["e:2379"]}`, "ha.etcd[0]", `bad URL "e:2379"`},
		{`{name: a, etcd: ["http://e:2379"], lease: 500ms}`, "ha.lease", "500ms is shorter than 1s"},
		{`{name: a, etcd: ["http://e:2379"], lease: 1500ms}`, "ha.lease", "1.5s: etcd leases are whole seconds"},
		{`{name: a, etcd: ["http://e:2379"], lease: 2m}`, "ha.lease", "at most 1m"},
		{`{name: a, etcd: ["http://e:2379"], shard: true}`, "ha.shard", "needs store:"},
		{`{name: a, etcd: ["http://e:2379"], shard: true}`, "ha.shard", "needs remote_write"},
		{`{name: a, etcd: ["http://127.0.0.1:2379", "http://10.0.0.2:2379"]}`, "ha.etcd[1]", "http:// to a host other than loopback"},
		{`{name: a, etcd: ["http://127.0.0.1:2379"], tls: {ca_file: ca.pem}}`, "ha.etcd[0]", "ha.tls is set"},
		{`{name: a, etcd: ["https://e:2379"], tls: {ca_file: /nonexistent/ca.pem}}`, "ha.tls.ca_file", "/nonexistent/ca.pem"},
		{`{name: a, etcd: ["https://e:2379"], tls: {cert_file: a.crt}}`, "ha.tls.key_file", "required with cert_file"},
	} {
		_, err := Load(writeConfig(t, good+"ha: "+tt.ha+"\n"))
		var errs *Errors
		if !errors.As(err, &errs) {
			t.Fatalf("ha %s: %v, want *Errors", tt.ha, err)
		}
		if !strings.Contains(err.Error(), ":15: "+tt.field+": ") || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ha %s: %v, want line 15, %s: %s", tt.ha, err, tt.field, tt.msg)
		}
	}
}
