package remotewrite

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	"github.com/golang/snappy"

	"github.com/nines-project/nines/appliance/store"
	"github.com/nines-project/nines/internal/secret"
)

const testToken = "remote-write-token-0123456789"

// receiver is a remote-write endpoint that decodes what it gets (snappy,
// then VictoriaMetrics' protobuf decoder) and answers with the status
// that answer returns for the n-th request (0 = 200, -1 = cut the
// connection).
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	n      int
	answer func(n int) int
	got    []float64 // sample values, in arrival order
	auth   []string
	srv    *httptest.Server
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	r := &receiver{t: t, answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.n
	r.n++
	code := 0
	if r.answer != nil {
		code = r.answer(n)
	}
	if code == -1 {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if code != 0 {
		http.Error(w, fmt.Sprintf("refused request %d", n), code)
		return
	}
	if req.Header.Get("Content-Encoding") != "snappy" || req.Header.Get("X-Prometheus-Remote-Write-Version") != "0.1.0" {
		r.t.Errorf("request %d headers %v: want Content-Encoding snappy and X-Prometheus-Remote-Write-Version 0.1.0", n, req.Header)
	}
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	body, _ := io.ReadAll(req.Body)
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		r.t.Errorf("request %d: snappy: %v", n, err)
		http.Error(w, err.Error(), 400)
		return
	}
	wru := prompb.GetWriteRequestUnmarshaler()
	defer prompb.PutWriteRequestUnmarshaler(wru)
	wr, err := wru.UnmarshalProtobuf(raw)
	if err != nil {
		r.t.Errorf("request %d: protobuf: %v", n, err)
		http.Error(w, err.Error(), 400)
		return
	}
	for _, ts := range wr.Timeseries {
		if name := ts.Labels[0]; name.Name != "__name__" || name.Value != "test_seq" {
			r.t.Errorf("request %d: series %v, want test_seq", n, ts.Labels)
		}
		for _, s := range ts.Samples {
			if int64(s.Value)*1000 != s.Timestamp {
				r.t.Errorf("sample %v at %d: value and timestamp disagree", s.Value, s.Timestamp)
			}
			r.got = append(r.got, s.Value)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) values() []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]float64(nil), r.got...)
}

func (r *receiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// batch is n samples of test_seq numbered from first (value = seconds).
func batch(first, n int) []store.Series {
	out := make([]store.Series, n)
	for i := range out {
		v := first + i
		out[i] = store.Series{Labels: []store.Label{{Name: "__name__", Value: "test_seq"}, {Name: "instance", Value: "db1"}}, Value: float64(v), TimestampMs: int64(v) * 1000}
	}
	return out
}

func open(t *testing.T, dir string, r Remote, logs io.Writer) *Writer {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	w, err := Open(Options{Dir: dir, Remotes: []Remote{r}, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		FlushInterval: 20 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantSeq checks got is exactly first..first+n-1, in order.
func wantSeq(t *testing.T, got []float64, first, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("received %d samples, want %d", len(got), n)
	}
	for i, v := range got {
		if int(v) != first+i {
			t.Fatalf("sample %d is %v, want %d: out of order or missing", i, v, first+i)
		}
	}
}

func TestEverySampleArrivesInOrderWithToken(t *testing.T) {
	rcv := newReceiver(t, nil)
	var logs bytes.Buffer
	w := open(t, t.TempDir(), Remote{Name: "vm", URL: rcv.srv.URL + "/api/v1/write", Token: secret.Secret(testToken)}, &logs)
	defer w.Close()
	for i := 0; i < 50; i++ {
		w.Append(batch(i*10, 10))
	}
	waitFor(t, "500 samples received", func() bool { return len(rcv.values()) == 500 })
	wantSeq(t, rcv.values(), 0, 500)
	for _, a := range rcv.auth {
		if a != "Bearer "+testToken {
			t.Fatalf("Authorization %q, want the bearer token", a)
		}
	}
	waitFor(t, "status counts 500 sent", func() bool { return w.Status()[0].SentSamples == 500 })
	st := w.Status()[0]
	if st.PendingSamples != 0 || st.Remote != "vm" || st.LastSuccess.IsZero() {
		t.Errorf("status %+v: want remote vm, 0 pending, a last success", st)
	}
	w.Close()
	if strings.Contains(logs.String(), testToken) || strings.Contains(fmt.Sprintf("%+v", w.Metrics()), testToken) {
		t.Error("the bearer token appears in the log or the metrics")
	}
}

func TestRetriesServerErrorsAndCutConnections(t *testing.T) {
	// 503, 429, a cut connection, 500: each is retried until accepted.
	answers := []int{503, 429, -1, 500}
	rcv := newReceiver(t, func(n int) int {
		if n < len(answers) {
			return answers[n]
		}
		return 0
	})
	w := open(t, t.TempDir(), Remote{URL: rcv.srv.URL}, nil)
	defer w.Close()
	w.Append(batch(0, 5))
	time.Sleep(50 * time.Millisecond) // a second block behind the first
	w.Append(batch(5, 5))
	waitFor(t, "10 samples received", func() bool { return len(rcv.values()) == 10 })
	wantSeq(t, rcv.values(), 0, 10)
	st := w.Status()[0]
	if st.FailedSends != 4 || st.DroppedRejects != 0 {
		t.Errorf("failed sends %d, dropped %d: want 4 retried failures and nothing dropped", st.FailedSends, st.DroppedRejects)
	}
	if !strings.Contains(st.LastError, "500") {
		t.Errorf("last error %q: want the receiver's 500", st.LastError)
	}
}

func TestDropsOnlyTheBatchRejectedWith400(t *testing.T) {
	rcv := newReceiver(t, func(n int) int {
		if n == 0 {
			return 400
		}
		return 0
	})
	var logs bytes.Buffer
	var logMu sync.Mutex
	w := open(t, t.TempDir(), Remote{Name: "p", URL: rcv.srv.URL}, lockedWriter{&logs, &logMu})
	defer w.Close()
	w.Append(batch(0, 7))
	waitFor(t, "the first batch rejected", func() bool { return w.Status()[0].DroppedRejects == 7 })
	w.Append(batch(7, 3))
	waitFor(t, "the second batch received", func() bool { return len(rcv.values()) == 3 })
	wantSeq(t, rcv.values(), 7, 3)
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "refused request 0") {
		t.Errorf("the log does not carry the receiver's answer:\n%s", logs.String())
	}
	if m := findMetric(w, "nines_remote_write_samples_dropped_total", "rejected"); m != 7 {
		t.Errorf("nines_remote_write_samples_dropped_total{reason=rejected} = %v, want 7", m)
	}
}

func TestRestartSendsWhatWasQueued(t *testing.T) {
	down := true
	var mu sync.Mutex
	rcv := newReceiver(t, func(int) int {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return 503
		}
		return 0
	})
	dir := t.TempDir()
	r := Remote{Name: "vm", URL: rcv.srv.URL}
	w := open(t, dir, r, nil)
	for i := 0; i < 20; i++ {
		w.Append(batch(i*100, 100))
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, "a send failed", func() bool { return w.Status()[0].FailedSends > 0 })
	waitFor(t, "2000 samples pending", func() bool { return w.Status()[0].PendingSamples == 2000 })
	if st := w.Status()[0]; st.QueueBytes == 0 {
		t.Fatalf("status %+v: want bytes queued", st)
	}
	w.Close()

	// Reopened while the receiver is still down: the count survived.
	w = open(t, dir, r, nil)
	defer w.Close()
	if st := w.Status()[0]; st.PendingSamples != 2000 || st.QueueBytes == 0 {
		t.Errorf("after restart %+v: want 2000 samples pending and bytes queued", st)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	w.Append(batch(2000, 100))
	waitFor(t, "2100 samples received", func() bool { return len(rcv.values()) == 2100 })
	wantSeq(t, rcv.values(), 0, 2100)
	waitFor(t, "the queue empty", func() bool { st := w.Status()[0]; return st.QueueBytes == 0 && st.PendingSamples == 0 })
}

func TestQueueFullDropsNewSamplesLoudly(t *testing.T) {
	rcv := newReceiver(t, func(int) int { return 503 })
	var logs bytes.Buffer
	var logMu sync.Mutex
	w := open(t, t.TempDir(), Remote{Name: "vm", URL: rcv.srv.URL, QueueMaxBytes: 4096}, lockedWriter{&logs, &logMu})
	defer w.Close()
	for i := 0; i < 40; i++ {
		w.Append(batch(i*50, 50))
		time.Sleep(25 * time.Millisecond)
	}
	waitFor(t, "samples dropped for a full queue", func() bool { return w.Status()[0].DroppedFull > 0 })
	st := w.Status()[0]
	if !st.QueueFull || st.QueueBytes > 4096 {
		t.Errorf("status %+v: want queue full and at most 4096 bytes", st)
	}
	if findMetric(w, "nines_remote_write_queue_full", "") != 1 {
		t.Error("nines_remote_write_queue_full is not 1")
	}
	if got := int64(st.DroppedFull) + st.PendingSamples; got != 2000 {
		t.Errorf("dropped %d + pending %d = %d, want every one of the 2000 samples accounted for", st.DroppedFull, st.PendingSamples, got)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "remote_write queue is full") {
		t.Errorf("no log line says the queue is full:\n%s", logs.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// findMetric returns the value of the first metric named name whose
// reason label is reason ("" matches any).
func findMetric(w *Writer, name, reason string) float64 {
	for _, m := range w.Metrics() {
		if m.Name != name {
			continue
		}
		for _, l := range m.Labels {
			if reason == "" || l.Name == "reason" && l.Value == reason {
				return m.Value
			}
		}
	}
	return -1
}

func TestLabelHidesCredentials(t *testing.T) {
	for _, tt := range []struct {
		r    Remote
		want string
	}{
		{Remote{URL: "https://user:pw@vm.example:8428/api/v1/write?token=x"}, "https://vm.example:8428/api/v1/write"},
		{Remote{Name: "central", URL: "https://u:p@h/w"}, "central"},
	} {
		if got := tt.r.Label(); got != tt.want {
			t.Errorf("Label(%q) = %q, want %q", tt.r.URL, got, tt.want)
		}
	}
}
