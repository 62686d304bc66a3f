package fleetsim

import (
	_ "embed"
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Captured from a MariaDB 10.11 node of a 3-node Galera 4 cluster on
// Debian 12 (`mariadb -N -B -e 'SHOW GLOBAL STATUS'`, and VARIABLES), with
// its sandbox path replaced.
var (
	//go:embed status.tsv
	statusTSV string
	//go:embed variables.tsv
	variablesTSV string
)

type row struct{ name, value string }

type templates struct {
	status, variables []row
	// rate is each status counter's growth per second (0: not a counter).
	rate []float64
}

func parseTSV(what, s string) ([]row, error) {
	var out []row
	for i, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		name, value, ok := strings.Cut(line, "\t")
		if !ok || name == "" {
			return nil, fmt.Errorf("fleetsim: %s line %d: want name<TAB>value, got %q", what, i+1, line)
		}
		out = append(out, row{name, value})
	}
	return out, nil
}

var (
	tmplOnce sync.Once
	tmpl     *templates
	tmplErr  error
)

func loadTemplates() (*templates, error) {
	tmplOnce.Do(func() {
		t := &templates{}
		if t.status, tmplErr = parseTSV("status.tsv", statusTSV); tmplErr != nil {
			return
		}
		if t.variables, tmplErr = parseTSV("variables.tsv", variablesTSV); tmplErr != nil {
			return
		}
		t.rate = make([]float64, len(t.status))
		for i, r := range t.status {
			if _, err := strconv.ParseFloat(r.value, 64); err == nil && isCounter(r.name) {
				h := fnv.New32a()
				h.Write([]byte(r.name))
				t.rate[i] = float64(h.Sum32()%50 + 1)
			}
		}
		tmpl = t
	})
	return tmpl, tmplErr
}

// counterPrefixes are the status values that only grow on a busy server.
var counterPrefixes = []string{"Com_", "Handler_", "Bytes_", "Questions", "Queries", "Innodb_rows_", "Innodb_data_",
	"Innodb_buffer_pool_read", "Innodb_buffer_pool_write", "Innodb_os_log_", "Innodb_log_write", "Select_", "Sort_",
	"Created_tmp", "Opened_", "Table_locks_", "Connections", "Key_read", "Key_write", "Binlog_bytes", "Feature_",
	"Slow_queries", "wsrep_replicated", "wsrep_received", "wsrep_local_commits", "wsrep_repl_"}

func isCounter(name string) bool {
	for _, p := range counterPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// node is one simulated server.
type node struct {
	t           *templates
	start       time.Time
	name        string
	addr        string
	cluster     int
	index       int // within its cluster
	clusterName string
	version     string

	statusOver map[string]func(elapsed float64) string
	varsByName map[string]string
	vars       resultSet

	mu     sync.Mutex
	sec    int64      // the second the cached status was built for
	rows   [][]string // that second's status; never changed once built
	status resultSet  // rows, encoded
}

// writeRate is the simulated cluster's write sets per second: Galera
// counters that every node of a cluster shares move by it.
const writeRate = 100

func newNode(t *templates, o Options, i int, start time.Time) *node {
	ci, idx := i/o.ClusterSize, i%o.ClusterSize
	size := min(o.ClusterSize, o.Nodes-ci*o.ClusterSize)
	var peers, gcomm []string
	for j := range size {
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", o.BasePort+ci*o.ClusterSize+j))
		gcomm = append(gcomm, fmt.Sprintf("127.0.0.1:%d", 4567+j))
	}
	n := &node{
		t: t, start: start,
		name:        fmt.Sprintf("c%04d-n%d", ci+1, idx+1),
		addr:        fmt.Sprintf("127.0.0.1:%d", o.BasePort+i),
		cluster:     ci,
		index:       idx,
		clusterName: fmt.Sprintf("fleet-%04d", ci+1),
	}
	clusterUUID := fmt.Sprintf("%08x-f1b8-11f1-b45a-6aa15be8eca1", ci+1)
	fixed := func(v string) func(float64) string { return func(float64) string { return v } }
	grows := func(base float64) func(float64) string {
		return func(e float64) string { return strconv.FormatInt(int64(base+e*writeRate), 10) }
	}
	n.statusOver = map[string]func(float64) string{
		"wsrep_cluster_size":        fixed(strconv.Itoa(size)),
		"wsrep_cluster_weight":      fixed(strconv.Itoa(size)),
		"wsrep_cluster_state_uuid":  fixed(clusterUUID),
		"wsrep_local_state_uuid":    fixed(clusterUUID),
		"wsrep_gcomm_uuid":          fixed(fmt.Sprintf("%08x-%04x-11f1-a351-67d46e9fe407", ci+1, idx+1)),
		"wsrep_local_index":         fixed(strconv.Itoa(idx)),
		"wsrep_incoming_addresses":  fixed(strings.Join(peers, ",")),
		"wsrep_cluster_status":      fixed("Primary"),
		"wsrep_local_state":         fixed("4"),
		"wsrep_local_state_comment": fixed("Synced"),
		"wsrep_ready":               fixed("ON"),
		"wsrep_connected":           fixed("ON"),
		"wsrep_last_committed":      grows(1000),
		"wsrep_replicated":          func(e float64) string { return strconv.FormatInt(int64(e*writeRate/float64(size)), 10) },
		"wsrep_received":            func(e float64) string { return strconv.FormatInt(int64(e*writeRate*float64(size-1)/float64(size)), 10) },
		"wsrep_local_recv_queue":    func(e float64) string { return strconv.Itoa(int(e) % 3) },
		"wsrep_flow_control_paused": func(e float64) string { return strconv.FormatFloat(float64(int(e)%7)/1000, 'f', 6, 64) },
		"Uptime":                    func(e float64) string { return strconv.FormatInt(int64(3600+e), 10) },
		"Uptime_since_flush_status": func(e float64) string { return strconv.FormatInt(int64(3600+e), 10) },
	}

	over := map[string]string{
		"hostname":                    n.name,
		"port":                        strconv.Itoa(o.BasePort + i),
		"server_id":                   strconv.Itoa(i + 1),
		"wsrep_node_name":             fmt.Sprintf("n%d", idx+1),
		"wsrep_cluster_name":          n.clusterName,
		"wsrep_cluster_address":       "gcomm://" + strings.Join(gcomm, ","),
		"wsrep_node_address":          "127.0.0.1",
		"wsrep_node_incoming_address": n.addr,
	}
	n.varsByName = map[string]string{}
	rows := make([][]string, 0, len(t.variables))
	for _, r := range t.variables {
		v := r.value
		if o, ok := over[r.name]; ok {
			v = o
		}
		n.varsByName[r.name] = v
		rows = append(rows, []string{r.name, v})
	}
	n.vars = newResultSet(nameValue, rows)
	n.version = n.varsByName["version"]
	return n
}

var nameValue = []string{"Variable_name", "Value"}

// statusAt is SHOW GLOBAL STATUS at now, as rows and encoded; built once
// per second, as the counters a scraper reads once a second would look.
func (n *node) statusAt(now time.Time) ([][]string, resultSet) {
	n.mu.Lock()
	defer n.mu.Unlock()
	sec := now.Unix()
	if n.status != nil && sec == n.sec {
		return n.rows, n.status
	}
	e := float64(sec) - float64(n.start.Unix())
	rows := make([][]string, len(n.t.status))
	for i, r := range n.t.status {
		v := r.value
		if f, ok := n.statusOver[r.name]; ok {
			v = f(e)
		} else if rate := n.t.rate[i]; rate > 0 {
			base, _ := strconv.ParseFloat(r.value, 64)
			v = strconv.FormatInt(int64(base+rate*e), 10)
		}
		rows[i] = []string{r.name, v}
	}
	n.rows, n.status, n.sec = rows, newResultSet(nameValue, rows), sec
	return n.rows, n.status
}

var (
	spaces  = regexp.MustCompile(`\s+`)
	inList  = regexp.MustCompile(`(?i)^SHOW GLOBAL (STATUS|VARIABLES) WHERE VARIABLE_NAME IN \((.*)\)$`)
	likeOne = regexp.MustCompile(`(?i)^SHOW (?:GLOBAL )?(STATUS|VARIABLES) LIKE '([^']*)'$`)
)

// answer runs one statement: a result set, ok for a statement without
// one, or an error naming a statement the simulator does not know.
func (n *node) answer(q string, now time.Time) (rs resultSet, ok bool, err error) {
	s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(q), ";"))
	s = spaces.ReplaceAllString(s, " ")
	u := strings.ToUpper(s)
	switch {
	case u == "SHOW GLOBAL STATUS":
		_, rs := n.statusAt(now)
		return rs, false, nil
	case u == "SHOW GLOBAL VARIABLES":
		return n.vars, false, nil
	case strings.HasPrefix(u, "SET "):
		return nil, true, nil
	case u == "SELECT 1":
		return newResultSet([]string{"1"}, [][]string{{"1"}}), false, nil
	}
	if m := inList.FindStringSubmatch(s); m != nil {
		want := map[string]bool{}
		for _, name := range strings.Split(m[2], ",") {
			want[strings.ToLower(strings.Trim(strings.TrimSpace(name), "'"))] = true
		}
		return n.filter(strings.ToUpper(m[1]), now, func(name string) bool { return want[strings.ToLower(name)] }), false, nil
	}
	if m := likeOne.FindStringSubmatch(s); m != nil {
		re, err := regexp.Compile("(?i)^" + strings.NewReplacer("%", ".*", "_", ".").Replace(regexp.QuoteMeta(m[2])) + "$")
		if err != nil {
			return nil, false, fmt.Errorf("fleetsim: bad LIKE pattern %q", m[2])
		}
		return n.filter(strings.ToUpper(m[1]), now, re.MatchString), false, nil
	}
	return nil, false, fmt.Errorf("fleetsim: statement not simulated: %.200s", s)
}

// filter is SHOW GLOBAL STATUS or VARIABLES restricted to names keep
// accepts.
func (n *node) filter(what string, now time.Time, keep func(string) bool) resultSet {
	var src [][]string
	if what == "STATUS" {
		src, _ = n.statusAt(now)
	} else {
		for _, r := range n.t.variables {
			src = append(src, []string{r.name, n.varsByName[r.name]})
		}
	}
	var rows [][]string
	for _, r := range src {
		if keep(r[0]) {
			rows = append(rows, r)
		}
	}
	return newResultSet(nameValue, rows)
}
