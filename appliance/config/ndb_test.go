package config

import (
	"errors"
	"strings"
	"testing"
)

// goodNDB is a kind ndb cluster as an operator writes it: two SQL nodes,
// two management servers, the agents of two data nodes.
const goodNDB = `listen: 127.0.0.1:9104
data_dir: data
api:
  tokens:
    - {name: ops, role: admin, token_file: api-token}
clusters:
  - name: tel
    kind: ndb
    nodes:
      - {address: "127.0.0.1:3306"}
      - {address: "127.0.0.1:3307"}
    credentials: {user: nines, password_file: db.pass}
    agent_token_file: api-token
    ndb:
      management:
        - {address: "127.0.0.1:1186"}
        - {address: "127.0.0.1:1187"}
      data_nodes:
        - {node_id: 1, agent: "https://dn1:9105"}
        - {node_id: 2, agent: "http://127.0.0.1:9106"}
`

func TestLoadNDB(t *testing.T) {
	cfg, err := Load(writeConfig(t, goodNDB))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	n := cfg.Clusters[0].NDB
	if got := strings.Join(n.ManagementAddresses(), ","); got != "127.0.0.1:1186,127.0.0.1:1187" {
		t.Errorf("management = %s", got)
	}
	if len(n.DataNodes) != 2 || n.DataNodes[0].NodeID != 1 || n.DataNodes[0].Agent != "https://dn1:9105" {
		t.Errorf("data nodes = %+v", n.DataNodes)
	}
	if e := cfg.Clusters[0].Probe.Engine; e != "NDBCLUSTER" {
		t.Errorf("probe engine of an ndb cluster = %q, want NDBCLUSTER (writes must reach the data nodes)", e)
	}
	// A management server may name its agent (ndb-rolling-restart).
	withAgent := strings.Replace(goodNDB, `{address: "127.0.0.1:1186"}`, `{address: "127.0.0.1:1186", agent: "https://mgm1:9105"}`, 1)
	if cfg, err := Load(writeConfig(t, withAgent)); err != nil || cfg.Clusters[0].NDB.Management[0].Agent != "https://mgm1:9105" {
		t.Errorf("a management server's agent: %v", err)
	}
	// data_nodes is optional.
	if _, err := Load(writeConfig(t, strings.Split(goodNDB, "      data_nodes:")[0])); err != nil {
		t.Errorf("without data_nodes: %v", err)
	}
}

func TestLoadRejectsNDB(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(string) string
		field string
		msg   string
	}{
		{"kind ndb without the ndb block", func(s string) string {
			return strings.Split(s, "    ndb:\n")[0]
		}, "clusters[0].ndb", "required for kind ndb: list the management servers"},
		{"an ndb block on a galera cluster", func(s string) string {
			return strings.Replace(s, "kind: ndb", "kind: galera", 1)
		}, "clusters[0].ndb", "only for kind ndb; this cluster is kind galera"},
		{"no management server", func(s string) string {
			return strings.Replace(strings.Replace(s, "        - {address: \"127.0.0.1:1186\"}\n", "", 1), "        - {address: \"127.0.0.1:1187\"}\n", "", 1)
		}, "clusters[0].ndb.management", "at least one management server (ndb_mgmd) is required"},
		{"a management address without a port", func(s string) string {
			return strings.Replace(s, `"127.0.0.1:1187"`, `"mgm2"`, 1)
		}, "clusters[0].ndb.management[1].address", `bad address "mgm2": want host:port`},
		{"a management server twice", func(s string) string {
			return strings.Replace(s, `"127.0.0.1:1187"`, `"127.0.0.1:1186"`, 1)
		}, "clusters[0].ndb.management[1].address", `"127.0.0.1:1186" is listed twice`},
		{"node id 0", func(s string) string {
			return strings.Replace(s, "node_id: 1,", "node_id: 0,", 1)
		}, "clusters[0].ndb.data_nodes[0].node_id", "0 is not a data node id in 1..144"},
		{"node id 145", func(s string) string {
			return strings.Replace(s, "node_id: 2,", "node_id: 145,", 1)
		}, "clusters[0].ndb.data_nodes[1].node_id", "145 is not a data node id in 1..144"},
		{"a data node twice", func(s string) string {
			return strings.Replace(s, "node_id: 2,", "node_id: 1,", 1)
		}, "clusters[0].ndb.data_nodes[1].node_id", "data node 1 is listed twice"},
		{"a bad agent URL", func(s string) string {
			return strings.Replace(s, `"https://dn1:9105"`, `"dn1:9105"`, 1)
		}, "clusters[0].ndb.data_nodes[0].agent", `bad agent URL "dn1:9105"`},
		{"an agent in clear text over the network", func(s string) string {
			return strings.Replace(s, `"https://dn1:9105"`, `"http://dn1:9105"`, 1)
		}, "clusters[0].ndb.data_nodes[0].agent", `"http://dn1:9105" is http:// to a host other than loopback`},
		{"a management server's agent in clear text over the network", func(s string) string {
			return strings.Replace(s, `{address: "127.0.0.1:1187"}`, `{address: "127.0.0.1:1187", agent: "http://mgm2:9105"}`, 1)
		}, "clusters[0].ndb.management[1].agent", `"http://mgm2:9105" is http:// to a host other than loopback`},
		{"a management server's agent without the agent token", func(s string) string {
			s = strings.Replace(s, `{node_id: 1, agent: "https://dn1:9105"}`, `{node_id: 1}`, 1)
			s = strings.Replace(s, `{node_id: 2, agent: "http://127.0.0.1:9106"}`, `{node_id: 2}`, 1)
			s = strings.Replace(s, `{address: "127.0.0.1:1186"}`, `{address: "127.0.0.1:1186", agent: "https://mgm1:9105"}`, 1)
			return strings.Replace(s, "    agent_token_file: api-token\n", "", 1)
		}, "clusters[0].agent_token_file", "required when a node names an agent"},
		{"a data node agent without the agent token", func(s string) string {
			return strings.Replace(s, "    agent_token_file: api-token\n", "", 1)
		}, "clusters[0].agent_token_file", "required when a node names an agent"},
		{"a probe engine that is no name", func(s string) string {
			return s + "    probe: {engine: \"InnoDB; DROP TABLE x\"}\n"
		}, "clusters[0].probe.engine", `"InnoDB; DROP TABLE x" is not a storage engine name`},
		{"a dump of an ndb cluster", func(s string) string {
			s = strings.Replace(s, `{address: "127.0.0.1:3306"}`, `{address: "127.0.0.1:3306", agent: "http://127.0.0.1:9105"}`, 1)
			return s + "    backups: [{method: dump, schedule: \"@daily\", keep: 3}]\n"
		}, "clusters[0].backups[0].method", `"dump": an ndb cluster is backed up natively (START BACKUP through the management server): use method: ndb`},
		{"a native backup with a dir", func(s string) string {
			return s + "    backups: [{method: ndb, schedule: \"@daily\", keep: 3, dir: /var/backups/nines}]\n"
		}, "clusters[0].backups[0].dir", "not for method ndb: each data node writes its backup files into its own BackupDataDir"},
		{"a native backup pinned to a node", func(s string) string {
			return s + "    backups: [{method: ndb, schedule: \"@daily\", keep: 3, node: \"127.0.0.1:3306\"}]\n"
		}, "clusters[0].backups[0].node", "not for method ndb: every data node takes part"},
		{"a native backup without data node agents", func(s string) string {
			return strings.Split(s, "      data_nodes:")[0] + "    backups: [{method: ndb, schedule: \"@daily\", keep: 3}]\n"
		}, "clusters[0].ndb.data_nodes", "native backups need the data nodes' agents"},
		{"a native backup with a data node without agent", func(s string) string {
			return strings.Replace(s, `{node_id: 2, agent: "http://127.0.0.1:9106"}`, `{node_id: 2}`, 1) + "    backups: [{method: ndb, schedule: \"@daily\", keep: 3}]\n"
		}, "clusters[0].ndb.data_nodes[1].agent", "required for native backups"},
		{"a native backup scheduled twice", func(s string) string {
			return s + "    backups: [{method: ndb, schedule: \"@daily\", keep: 3}, {method: ndb, schedule: \"@hourly\", keep: 3}]\n"
		}, "clusters[0].backups[1].method", "one schedule per method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.edit(goodNDB)))
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load = %v, want *Errors", err)
			}
			for _, fe := range errs.List {
				if fe.Field == tt.field && strings.Contains(fe.Msg, tt.msg) {
					return
				}
			}
			t.Errorf("no error at %s containing %q; got:\n%v", tt.field, tt.msg, err)
		})
	}
	// A native backup: no dir (the data nodes' BackupDataDir decides).
	cfg, err := Load(writeConfig(t, goodNDB+"    backups: [{method: ndb, schedule: \"*/5 * * * *\", keep: 3, verify: true}]\n"))
	if err != nil {
		t.Fatalf("native backup of an ndb cluster: %v", err)
	}
	if b := cfg.Clusters[0].Backups[0]; b.Method != "ndb" || b.Dir != "" || b.Keep != 3 || !b.Verify {
		t.Errorf("native backup as read: %+v", b)
	}
	// The insecure switch accepts clear text, as on nodes.
	body := strings.Replace(goodNDB, `{node_id: 1, agent: "https://dn1:9105"}`, `{node_id: 1, agent: "http://dn1:9105", insecure: true}`, 1)
	if _, err := Load(writeConfig(t, body)); err != nil {
		t.Errorf("insecure: true on a data node: %v", err)
	}
}
