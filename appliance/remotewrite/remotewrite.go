// Package remotewrite sends every sample the appliance stores to
// Prometheus remote-write receivers (VictoriaMetrics, Prometheus with
// --web.enable-remote-write-receiver, Mimir, ...), through a queue on
// disk so that no sample is lost while a receiver is down.
//
// Design. Every Store.Write is teed into Append, which appends the
// samples, already encoded as a remote-write protobuf, to a buffer; once a
// second (or at MaxBlockSamples) the buffer becomes one block, snappy
// compressed, and is written to one disk queue per remote. A sender per
// remote drains its queue block by block: one block is one HTTP request
// (Content-Encoding snappy, X-Prometheus-Remote-Write-Version 0.1.0).
// Network errors, 5xx and 429 are retried with capped exponential backoff,
// forever: the block stays at the head of the queue, so nothing behind it
// overtakes it and receivers that refuse out-of-order samples (Prometheus)
// see them in order. Another 4xx is a permanent rejection of that batch
// (Prometheus does the same): it is counted, the receiver's answer logged,
// and only that block dropped.
//
// The other design, using the store itself as the queue with a persisted
// time cursor, was set aside: samples are not always written in time order
// (the SLI counters are stamped at second boundaries after the fact, rule
// results at their evaluation time), so a cursor on time would skip or
// repeat some; a queue of what was written is exact whatever the
// timestamps.
//
// The queue is VictoriaMetrics' lib/persistentqueue (what vmagent uses),
// opened with no in-memory part, so every block is on disk before a sender
// sees it (the queue flushes its file and read position once a second).
// The block being sent is also kept in a file (inflight) until the
// receiver accepts it, so a restart never loses it. A crash loses at most
// the last second or two not yet flushed, and may resend what was sent in
// the second before it: delivery is at least once.
//
// Disk use is bounded by each remote's queue_max_bytes. When a block does
// not fit, it is not queued: its samples are counted as dropped with
// reason queue_full, nines_remote_write_queue_full goes to 1 and an error
// is logged (RemoteWriteQueueFull alerts on it). Dropping the newest rather
// than the oldest keeps the count exact and the queued history contiguous.
package remotewrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	"github.com/golang/snappy"

	"github.com/nines-project/nines/appliance/store"
)

// DefaultQueueMaxBytes bounds a remote's queue when its config does not.
// Measured in the e2e drill: a 3-node Galera cluster makes some 3,300
// samples a second at 22 bytes a sample queued, so 1 GiB holds about 4
// hours of outage for it (less for a larger site: raise queue_max_bytes).
const DefaultQueueMaxBytes = 1 << 30

// Options configure a Writer.
type Options struct {
	// Dir holds one queue directory per remote; it survives restarts.
	Dir     string
	Remotes []Remote
	Logger  *slog.Logger
	// FlushInterval is how long samples wait in memory before they are
	// queued on disk (default 1 s); a crash loses at most that much.
	FlushInterval time.Duration
	// MaxBlockSamples caps the samples in one block, that is one request
	// (default 10000, as Prometheus' max_samples_per_send is 2000 and
	// vmagent's 10000).
	MaxBlockSamples int
	// MinBackoff and MaxBackoff bound the wait between retries of a
	// failed send (defaults 500 ms and 5 s, as Prometheus' remote write
	// has it): a receiver back from an outage waits at most 5 s for the
	// catch-up to begin.
	MinBackoff, MaxBackoff time.Duration
	// Now is the clock of the last-success timestamps (default time.Now).
	Now func() time.Time
}

// Writer queues samples for every remote and sends them.
type Writer struct {
	o       Options
	log     *slog.Logger
	senders []*sender

	mu      sync.Mutex
	buf     []byte // concatenated WriteRequest messages: still one message
	samples int

	flushNow chan struct{}
	stop     chan struct{}
	done     chan struct{}
	closed   sync.Once
	wg       sync.WaitGroup
}

// blockHeader is a block's first bytes: the number of samples in it, so
// the counters need not decode the block.
const blockHeader = 4

var idRE = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// Open opens (or creates) the queue of every remote under o.Dir and starts
// their senders. Blocks left by a previous run are sent first.
func Open(o Options) (*Writer, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.MaxBlockSamples <= 0 {
		o.MaxBlockSamples = 10000
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := store.InitVictoriaMetrics(); err != nil {
		return nil, err
	}
	w := &Writer{o: o, log: o.Logger, flushNow: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	seen := map[string]bool{}
	for _, r := range o.Remotes {
		id := r.queueID()
		if seen[id] {
			return nil, fmt.Errorf("remote_write: two remotes share the queue %q", id)
		}
		seen[id] = true
		s, err := newSender(w, r, filepath.Join(o.Dir, id))
		if err != nil {
			for _, s := range w.senders {
				s.q.MustClose()
			}
			return nil, err
		}
		w.senders = append(w.senders, s)
	}
	for _, s := range w.senders {
		w.wg.Add(1)
		go func() { defer w.wg.Done(); s.run() }()
	}
	go w.flushLoop()
	return w, nil
}

// Append queues series for every remote. It is Store's Tee: safe for
// concurrent use, and it keeps nothing of series.
func (w *Writer) Append(series []store.Series) {
	if len(series) == 0 || len(w.senders) == 0 {
		return
	}
	tss := make([]prompb.TimeSeries, len(series))
	samples := make([]prompb.Sample, len(series))
	for i, sr := range series {
		samples[i] = prompb.Sample{Value: sr.Value, Timestamp: sr.TimestampMs}
		tss[i] = prompb.TimeSeries{Labels: sr.Labels, Samples: samples[i : i+1]}
	}
	w.mu.Lock()
	// Protobuf concatenates repeated fields: two WriteRequests one after
	// the other decode as one holding both series lists.
	w.buf = (&prompb.WriteRequest{Timeseries: tss}).MarshalProtobuf(w.buf)
	w.samples += len(series)
	full := w.samples >= w.o.MaxBlockSamples
	w.mu.Unlock()
	if full {
		select {
		case w.flushNow <- struct{}{}:
		default:
		}
	}
}

func (w *Writer) flushLoop() {
	defer close(w.done)
	t := time.NewTicker(w.o.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			w.flush()
			return
		case <-t.C:
		case <-w.flushNow:
		}
		w.flush()
	}
}

// flush turns the buffer into one block and queues it for every remote.
func (w *Writer) flush() {
	w.mu.Lock()
	raw, n := w.buf, w.samples
	w.buf, w.samples = nil, 0
	w.mu.Unlock()
	if n == 0 {
		return
	}
	block := make([]byte, blockHeader, blockHeader+snappy.MaxEncodedLen(len(raw)))
	binary.BigEndian.PutUint32(block, uint32(n))
	block = append(block, snappy.Encode(nil, raw)...)
	for _, s := range w.senders {
		s.enqueue(block, n)
	}
}

// Close queues what is buffered, lets each sender finish the request it
// is in (up to a few seconds) and closes the queues; unsent blocks stay on
// disk for the next Open.
func (w *Writer) Close() error {
	w.closed.Do(func() {
		close(w.stop)
		<-w.done
		for _, s := range w.senders {
			s.shutdown()
		}
		w.wg.Wait()
		for _, s := range w.senders {
			s.close()
		}
	})
	return nil
}

// Status is one remote's state, for the API and `nines status`.
type Status struct {
	Remote         string    `json:"remote"`
	QueueBytes     uint64    `json:"queueBytes"`
	QueueMaxBytes  int64     `json:"queueMaxBytes"`
	QueueFull      bool      `json:"queueFull"`
	PendingSamples int64     `json:"pendingSamples"`
	SentSamples    uint64    `json:"sentSamples"`
	FailedSends    uint64    `json:"failedSends"`
	DroppedFull    uint64    `json:"droppedQueueFull"`
	DroppedRejects uint64    `json:"droppedRejected"`
	LastSuccess    time.Time `json:"lastSuccess,omitzero"`
	LastError      string    `json:"lastError,omitempty"`
}

// Status reports every remote, in config order.
func (w *Writer) Status() []Status {
	out := make([]Status, 0, len(w.senders))
	for _, s := range w.senders {
		out = append(out, s.status())
	}
	return out
}

// errPermanent marks a send the receiver refused for good.
var errPermanent = errors.New("rejected by the receiver")

// writeFileAtomic replaces path with b: a crash leaves the old or the new
// content, never a torn one.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
