package store

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"
)

type promResponse struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
			Values [][]any           `json:"values"`
		} `json:"result"`
	} `json:"data"`
	Error string `json:"error"`
}

func get(t *testing.T, h http.Handler, path string, params url.Values) promResponse {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path+"?"+params.Encode(), nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var r promResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || r.Status != "success" {
		t.Fatalf("GET %s?%s: %d %s (%v)", path, params.Encode(), rec.Code, rec.Body.String(), err)
	}
	return r
}

func sample(name string, v float64, at time.Time, labels ...string) Series {
	ls := []Label{{Name: "__name__", Value: name}}
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, Label{Name: labels[i], Value: labels[i+1]})
	}
	return Series{Labels: ls, Value: v, TimestampMs: at.UnixMilli()}
}

// TestWriteQueryRestart writes a minute of samples, reads them back as a
// user would through the query API, restarts the store on the same
// directory and reads them again.
func TestWriteQueryRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{DataDir: dir, Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{DataDir: t.TempDir(), Retention: 24 * time.Hour}); err != ErrAlreadyOpen {
		t.Errorf("second Open = %v, want ErrAlreadyOpen", err)
	}
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	for i := 0; i < 60; i++ {
		at := start.Add(time.Duration(i) * time.Second)
		s.Write([]Series{
			sample("mysql_global_status_wsrep_cluster_size", 3, at, "cluster", "c1", "instance", "n1:3306"),
			sample("mysql_global_status_wsrep_cluster_size", 3, at, "cluster", "c1", "instance", "n2:3306"),
		})
	}
	// A node that stops reporting gets a staleness marker: instant queries
	// must drop it at once.
	s.Write([]Series{sample("mysql_global_status_wsrep_cluster_size", StaleNaN, start.Add(60*time.Second), "cluster", "c1", "instance", "n2:3306")})
	s.Flush()

	h := s.Handler()
	r := get(t, h, "/api/v1/query", url.Values{"query": {"mysql_global_status_wsrep_cluster_size"}, "time": {strconv.FormatInt(start.Add(61*time.Second).Unix(), 10)}})
	if len(r.Data.Result) != 1 || r.Data.Result[0].Metric["instance"] != "n1:3306" {
		t.Errorf("instant query after staleness marker: %+v, want only n1", r.Data.Result)
	}

	rangeQuery := url.Values{
		"query": {`mysql_global_status_wsrep_cluster_size{instance="n1:3306"}`},
		"start": {strconv.FormatInt(start.Unix(), 10)},
		"end":   {strconv.FormatInt(start.Add(59*time.Second).Unix(), 10)},
		"step":  {"1s"},
	}
	if n := len(get(t, h, "/api/v1/query_range", rangeQuery).Data.Result[0].Values); n != 60 {
		t.Errorf("query_range before restart: %d points, want 60", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(Options{DataDir: dir, Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r = get(t, s.Handler(), "/api/v1/query_range", rangeQuery)
	if len(r.Data.Result) != 1 || len(r.Data.Result[0].Values) != 60 {
		t.Fatalf("query_range after restart: %+v, want 60 points", r.Data.Result)
	}
	for _, v := range r.Data.Result[0].Values {
		if v[1] != "3" {
			t.Fatalf("value %v, want 3", v)
		}
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/label/instance/values", nil))
	var lv struct{ Data []string }
	if err := json.Unmarshal(rec.Body.Bytes(), &lv); err != nil || len(lv.Data) != 2 {
		t.Errorf("label values after restart: %s, want n1 and n2", rec.Body.String())
	}
}

// BenchmarkWriteFlush measures a scrape's write (1,500 series, as one
// Galera node yields) followed by the flush that makes it visible.
func BenchmarkWriteFlush(b *testing.B) {
	s, err := Open(Options{DataDir: b.TempDir(), Retention: 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := make([]Series, 1500)
	at := time.Now()
	for i := range batch {
		batch[i] = sample(fmt.Sprintf("m_%d", i), float64(i), at, "cluster", "c", "instance", "n1:3306")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ts := at.Add(time.Duration(i) * time.Second).UnixMilli()
		for j := range batch {
			batch[j].TimestampMs = ts
			batch[j].Value = math.Mod(float64(i+j), 100)
		}
		s.Write(batch)
		s.Flush()
	}
}

// BenchmarkWrite is BenchmarkWriteFlush without the flush, to tell the
// two costs apart.
func BenchmarkWrite(b *testing.B) {
	s, err := Open(Options{DataDir: b.TempDir(), Retention: 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := make([]Series, 1500)
	at := time.Now()
	for i := range batch {
		batch[i] = sample(fmt.Sprintf("m_%d", i), float64(i), at, "cluster", "c", "instance", "n1:3306")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ts := at.Add(time.Duration(i) * time.Second).UnixMilli()
		for j := range batch {
			batch[j].TimestampMs = ts
		}
		s.Write(batch)
	}
}
