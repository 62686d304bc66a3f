// Package store embeds VictoriaMetrics as the appliance's time-series
// store: samples are written in-process and read back through VictoriaMetrics'
// own Prometheus-compatible query API.
//
// VictoriaMetrics keeps its state in package globals and reads its settings
// from Go's global flag set, so there is at most one open Store per process
// and this package is the only place in nines that sets those flags.
package store

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/app/vminsert"
	"github.com/VictoriaMetrics/VictoriaMetrics/app/vminsert/prompush"
	"github.com/VictoriaMetrics/VictoriaMetrics/app/vmselect"
	"github.com/VictoriaMetrics/VictoriaMetrics/app/vmselect/promql"
	"github.com/VictoriaMetrics/VictoriaMetrics/app/vmstorage"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/logger"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
)

// StaleNaN marks a series as ended, as Prometheus' staleness markers do:
// instant queries stop returning it at once instead of repeating its last
// value for the lookback window.
var StaleNaN = math.Float64frombits(0x7ff0000000000002)

// Options configure the store.
type Options struct {
	// DataDir holds the data; it survives restarts.
	DataDir string
	// Retention is how long samples are kept; at least one day.
	Retention time.Duration
	// FlushInterval bounds how long a written sample may stay invisible to
	// queries. VictoriaMetrics itself makes new samples searchable within
	// about two seconds; alerts that must fire within a few seconds of a
	// failure cannot wait that long, so the store flushes on this interval
	// whenever something was written, and at once on FlushSoon.
	FlushInterval time.Duration
	// Tee, when set, receives every batch Write stores, after it is
	// stored (remote_write queues them). It must not keep or modify
	// the slice.
	Tee func([]Series)
	// MemoryBytes caps VictoriaMetrics' caches. Its default (60 % of the
	// machine's memory) suits a dedicated server, not an appliance beside
	// other services.
	MemoryBytes int64
}

// Store is the open embedded store.
type Store struct {
	tee     func([]Series)
	dirty   atomic.Bool
	written atomic.Uint64
	soon    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	closed  sync.Once
}

var (
	loggerOnce sync.Once
	openMu     sync.Mutex
	isOpen     bool
)

// ErrAlreadyOpen is returned by Open while another Store is open in this
// process.
var ErrAlreadyOpen = errors.New("store: an embedded store is already open in this process")

// Open starts the store on o.DataDir.
func Open(o Options) (*Store, error) {
	openMu.Lock()
	defer openMu.Unlock()
	if isOpen {
		return nil, ErrAlreadyOpen
	}
	if o.Retention < 24*time.Hour {
		return nil, fmt.Errorf("store: retention %s is shorter than one day", o.Retention)
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 500 * time.Millisecond
	}
	if o.MemoryBytes <= 0 {
		o.MemoryBytes = 256 << 20
	}
	if err := os.MkdirAll(o.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	if err := setVMFlags(o); err != nil {
		return nil, err
	}
	if err := InitVictoriaMetrics(); err != nil {
		return nil, err
	}

	vmstorage.Init(8, 10*time.Second, promql.ResetRollupResultCacheIfNeeded)
	vmselect.Init(8, 10*time.Second)
	vminsert.Init()
	isOpen = true

	s := &Store{tee: o.Tee, soon: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go s.flushLoop(o.FlushInterval)
	return s, nil
}

// setVMFlags is the one place in nines that touches flag.CommandLine.
// VictoriaMetrics reads every setting from Go's global flag set (its
// packages register some 350 flags there at import), so the store's
// options can only reach it this way, and only one store can be open per
// process (Open enforces it). nines' own commands use their own flag sets
// (cobra), never the global one; a test keeps it so.
func setVMFlags(o Options) error {
	// VictoriaMetrics panics unless the global flag set was parsed; parse it
	// empty so it never sees nines' own arguments.
	if !flag.CommandLine.Parsed() {
		if err := flag.CommandLine.Parse(nil); err != nil {
			return fmt.Errorf("store: init flags: %w", err)
		}
	}
	settings := map[string]string{
		"storageDataPath": o.DataDir,
		"retentionPeriod": strconv.FormatInt(int64(o.Retention/time.Hour), 10) + "h",
		"loggerLevel":     "ERROR",
		// nines flushes explicitly (FlushInterval), so queries need not
		// hide the newest 30 s as VictoriaMetrics does by default.
		"search.latencyOffset": "0s",
		"memory.allowedBytes":  strconv.FormatInt(o.MemoryBytes, 10),
	}
	for name, value := range settings {
		if err := flag.CommandLine.Set(name, value); err != nil {
			return fmt.Errorf("store: set -%s=%s: %w", name, value, err)
		}
	}
	return nil
}

// InitVictoriaMetrics readies the parts of VictoriaMetrics that other
// packages use as libraries (the remote-write queue uses its
// lib/persistentqueue): its logger panics unless initialized, and
// initializing it needs the global flag set parsed. Safe to call more
// than once and before or after Open.
func InitVictoriaMetrics() error {
	var err error
	loggerOnce.Do(func() {
		if !flag.CommandLine.Parsed() {
			if err = flag.CommandLine.Parse(nil); err != nil {
				err = fmt.Errorf("store: init flags: %w", err)
				return
			}
		}
		// Its info lines (a queue opened, a part merged) are noise in
		// nines' log; errors still come through.
		if err = flag.CommandLine.Set("loggerLevel", "ERROR"); err != nil {
			err = fmt.Errorf("store: set -loggerLevel: %w", err)
			return
		}
		logger.InitNoLogFlags()
	})
	return err
}

// Label is one label of a series; the metric name is the label __name__.
type Label = prompb.Label

// Series is one sample of one series.
type Series struct {
	Labels      []Label
	Value       float64
	TimestampMs int64
}

// Write stores samples. It is safe for concurrent use.
func (s *Store) Write(series []Series) {
	if len(series) == 0 {
		return
	}
	tss := make([]prompb.TimeSeries, len(series))
	samples := make([]prompb.Sample, len(series))
	for i, sr := range series {
		samples[i] = prompb.Sample{Value: sr.Value, Timestamp: sr.TimestampMs}
		tss[i] = prompb.TimeSeries{Labels: sr.Labels, Samples: samples[i : i+1]}
	}
	prompush.Push(&prompb.WriteRequest{Timeseries: tss})
	if s.tee != nil {
		s.tee(series)
	}
	s.written.Add(uint64(len(series)))
	s.dirty.Store(true)
}

// FlushSoon asks for a flush now, without waiting for it: for samples that
// report a failure and should not wait for the next interval.
func (s *Store) FlushSoon() {
	select {
	case s.soon <- struct{}{}:
	default:
	}
}

// Written is the number of samples written since Open.
func (s *Store) Written() uint64 { return s.written.Load() }

// Flush makes every sample written so far visible to queries.
func (s *Store) Flush() {
	s.dirty.Store(false)
	vmstorage.DebugFlush()
}

func (s *Store) flushLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.soon:
		}
		if s.dirty.Load() {
			s.Flush()
		}
	}
}

// Handler serves VictoriaMetrics' query API: /api/v1/query, query_range,
// series, labels, label/<name>/values and the rest of vmselect. It does
// not serve the write endpoints.
func (s *Store) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// VictoriaMetrics rounds an omitted instant-query time down to the
		// second, so "now" could miss the last second of samples.
		// Prometheus means the exact moment; so does nines.
		if strings.HasSuffix(r.URL.Path, "/api/v1/query") && r.FormValue("time") == "" {
			r.Form.Set("time", strconv.FormatFloat(float64(time.Now().UnixMilli())/1000, 'f', 3, 64))
		}
		if !vmselect.RequestHandler(w, r) {
			http.NotFound(w, r)
		}
	})
}

// Close flushes and closes the store; data is on disk when it returns.
func (s *Store) Close() error {
	s.closed.Do(func() {
		close(s.stop)
		<-s.done
		vminsert.Stop()
		vmstorage.Stop()
		vmselect.Stop()
		openMu.Lock()
		isOpen = false
		openMu.Unlock()
	})
	return nil
}
