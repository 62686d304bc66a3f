package appliance

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/exporter/qan"
)

// qanTestApp is an App with a real store and the query analytics of
// cluster c1 (nodes db1, db2), fed with hand-made intervals.
func qanTestApp(t *testing.T) (*App, *ingester) {
	t.Helper()
	st := openTestStore(t)
	q, err := newQuerier(st, nil, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	in := newIngester(st, nil)
	qa := &queryAnalytics{log: slog.Default(), in: in, now: time.Now, texts: map[qan.Key]*textEntry{}, blocks: map[string]blockingRead{},
		nodes: map[string][]*qanNode{"c1": {{cluster: "c1", instance: "db1", state: "on"}, {cluster: "c1", instance: "db2", state: "off", why: "performance_schema is OFF on this node"}}}}
	qa.texts[qan.Key{Digest: "aaa"}] = &textEntry{Text: qan.Text{Normalized: "SELECT `SLEEP` (?)", Example: "SELECT SLEEP(1)"}}
	return &App{store: st, query: q, in: in, qan: qa}, in
}

func delta(digest string, calls, seconds float64) qan.Delta {
	return qan.Delta{Key: qan.Key{Digest: digest}, Totals: qan.Totals{Calls: calls, Seconds: seconds, RowsExamined: calls * 100}}
}

type queriesData struct {
	Window  string
	Sort    string
	Nodes   []qanStatus
	Digests []digestRow
}

func getQueries(t *testing.T, a *App, cluster, query string) (int, queriesData, string) {
	t.Helper()
	e := echo.New()
	req := httptest.NewRequest(http.MethodGet, "/api/v1/clusters/"+cluster+"/queries?"+query, nil)
	rec := httptest.NewRecorder()
	c := e.NewContext(req, rec)
	c.SetParamNames("name")
	c.SetParamValues(cluster)
	if err := a.queries(c); err != nil {
		t.Fatal(err)
	}
	var body struct{ Data queriesData }
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body.Data, rec.Body.String()
}

// TestQueriesSumsIntervalsOverTheWindow: the API adds up the stored
// per-interval deltas inside the window only, joins the texts, sorts by
// the chosen column and says which node has digests off.
func TestQueriesSumsIntervalsOverTheWindow(t *testing.T) {
	a, in := qanTestApp(t)
	now := time.Now()
	// Twenty minutes ago: outside a 5m window, inside 1h.
	in.write("nines:qan:db1", qan.Metrics("c1", "db1", true, []qan.Delta{delta("aaa", 100, 100)}), now.Add(-20*time.Minute), false)
	in.write("nines:qan:db1", qan.Metrics("c1", "db1", true, []qan.Delta{delta("aaa", 2, 3), delta("bbb", 50, 0.5)}), now.Add(-60*time.Second), false)
	in.write("nines:qan:db1", qan.Metrics("c1", "db1", true, []qan.Delta{delta("aaa", 4, 3)}), now.Add(-50*time.Second), false)
	in.write("nines:qan:db2", qan.Metrics("c1", "db2", true, []qan.Delta{delta("bbb", 10, 0.1)}), now.Add(-55*time.Second), false)
	a.store.Flush()

	code, d, raw := getQueries(t, a, "c1", "window=5m")
	if code != 200 || len(d.Digests) != 3 {
		t.Fatalf("%d %s: want 3 rows (aaa on db1, bbb on db1 and db2)", code, raw)
	}
	top := d.Digests[0]
	if top.Digest != "aaa" || top.Instance != "db1" || top.Calls != 6 || top.Seconds != 6 || top.AvgSeconds != 1 || top.RowsExamined != 600 ||
		top.Normalized != "SELECT `SLEEP` (?)" || top.Example != "SELECT SLEEP(1)" {
		t.Errorf("top by time %+v: want aaa on db1, 6 calls, 6 s (the 20-minute-old interval left out), with its text", top)
	}
	if len(d.Nodes) != 2 || d.Nodes[1].Digests != "off" || !strings.Contains(d.Nodes[1].Why, "performance_schema is OFF") {
		t.Errorf("node states %+v: want db2 off with the reason", d.Nodes)
	}

	_, d, _ = getQueries(t, a, "c1", "window=5m&sort=calls&by=cluster")
	if len(d.Digests) != 2 || d.Digests[0].Digest != "bbb" || d.Digests[0].Calls != 60 || d.Digests[0].Instance != "" {
		t.Errorf("whole cluster by calls: %+v, want bbb first with 60 calls (both nodes)", d.Digests)
	}
	_, d, _ = getQueries(t, a, "c1", "window=1h&node=db1&limit=1")
	if len(d.Digests) != 1 || d.Digests[0].Calls != 106 {
		t.Errorf("1h on db1, limit 1: %+v, want aaa with 106 calls", d.Digests)
	}
}

func TestQueriesBadParameters(t *testing.T) {
	a, _ := qanTestApp(t)
	for query, want := range map[string]string{
		"window=10s":    `window "10s"`,
		"window=banana": `window "banana"`,
		"sort=fastest":  `sort "fastest": want one of`,
		"by=rack":       `by "rack"`,
		"limit=0":       `limit "0"`,
		"node=db9":      `node "db9" is not a node of cluster "c1"`,
	} {
		code, _, raw := getQueries(t, a, "c1", query)
		var e apiError
		_ = json.Unmarshal([]byte(raw), &e)
		if code != 400 || !strings.Contains(e.Error, want) {
			t.Errorf("%s: %d %s, want 400 saying %s", query, code, raw, want)
		}
	}
	if code, _, _ := getQueries(t, a, "nope", ""); code != 404 {
		t.Errorf("unknown cluster: %d, want 404", code)
	}
}

// TestBlockingReadIsReused: reads within blockingReuse of the last one
// answer it again, so the nodes see at most one statement per 5 s
// however many ask; a node that cannot be read is an error in its entry,
// not a failed answer.
func TestBlockingReadIsReused(t *testing.T) {
	db, err := sqlNodeDB(config.Cluster{Name: "c1"}, "127.0.0.1:1") // nothing listens on port 1
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	clock := time.Now()
	qa := &queryAnalytics{now: func() time.Time { return clock }, blocks: map[string]blockingRead{}, blockLocks: map[string]*sync.Mutex{"c1": {}}}
	nodes := []*qanNode{{cluster: "c1", instance: "127.0.0.1:1", db: db}}
	first := qa.readBlocking(t.Context(), "c1", nodes)
	if len(first.nodes) != 1 || first.nodes[0].Error == "" || first.nodes[0].Blocking != nil {
		t.Fatalf("unreachable node: %+v, want its error", first.nodes)
	}
	clock = clock.Add(blockingReuse - time.Millisecond)
	if again := qa.readBlocking(t.Context(), "c1", nodes); !again.at.Equal(first.at) {
		t.Errorf("a read %s after the last was made anew (at %s, last %s)", blockingReuse-time.Millisecond, again.at, first.at)
	}
	clock = clock.Add(2 * time.Millisecond)
	if fresh := qa.readBlocking(t.Context(), "c1", nodes); fresh.at.Equal(first.at) {
		t.Errorf("a read past %s reused the old one", blockingReuse)
	}
}
