package remotewrite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/persistentqueue"

	"github.com/nines-project/nines/internal/secret"
)

// Remote is one receiver.
type Remote struct {
	// Name labels the remote's metrics and names its queue directory;
	// without it the URL (credentials removed) labels them.
	Name string
	URL  string
	// Token, when set, is sent as a bearer token.
	Token secret.Secret
	// TLS checks an https receiver; nil means the system's roots.
	TLS *tls.Config
	// QueueMaxBytes bounds the queue on disk (default DefaultQueueMaxBytes).
	QueueMaxBytes int64
}

// Label is the remote's name, or its URL without user info, query or
// fragment (which may carry credentials).
func (r Remote) Label() string {
	if r.Name != "" {
		return r.Name
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return "invalid-url"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// queueID is the remote's queue directory: its name, or a digest of its
// URL (a URL holds characters no file name should).
func (r Remote) queueID() string {
	if r.Name != "" {
		return "name-" + idRE.ReplaceAllString(r.Name, "_")
	}
	sum := sha256.Sum256([]byte(r.URL))
	return "url-" + hex.EncodeToString(sum[:8])
}

type sender struct {
	w      *Writer
	r      Remote
	label  string
	dir    string
	q      *persistentqueue.FastQueue
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc

	stopping atomic.Bool
	// enqMu orders the size check before a write against other writers.
	enqMu sync.Mutex

	sent, failed, droppedFull, droppedRejected atomic.Uint64
	pending                                    atomic.Int64
	inflightBytes                              atomic.Int64
	full                                       atomic.Bool
	lastSuccess                                atomic.Int64 // unix ms
	lastErr                                    atomic.Value // string
	failing                                    atomic.Bool
	accepted                                   atomic.Bool // since Open
}

const (
	inflightFile = "inflight"
	pendingFile  = "pending-samples"
)

func newSender(w *Writer, r Remote, dir string) (*sender, error) {
	if r.QueueMaxBytes <= 0 {
		r.QueueMaxBytes = DefaultQueueMaxBytes
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("remote_write %s: create queue dir: %w", r.Label(), err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = r.TLS
	s := &sender{w: w, r: r, label: r.Label(), dir: dir, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.lastErr.Store("")
	// The queue itself never drops (max 0): enqueue checks the bound and
	// refuses loudly instead. No in-memory part: every block is on disk
	// before it is sent.
	s.q = persistentqueue.MustOpenFastQueue(filepath.Join(dir, "queue"), s.label, 0, 0, false)
	// The pending count of the last run, saved by close; after a crash
	// it is lost and the count starts at 0 (the bytes stay exact).
	if b, err := os.ReadFile(filepath.Join(dir, pendingFile)); err == nil {
		if n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64); err == nil && n > 0 {
			s.pending.Store(n)
		}
	}
	// Not "never": the remote has had no chance to accept anything yet,
	// and RemoteWriteBehind measures from here.
	s.lastSuccess.Store(w.o.Now().UnixMilli())
	return s, nil
}

// enqueue puts block on the disk queue unless that would pass the bound.
func (s *sender) enqueue(block []byte, n int) {
	s.enqMu.Lock()
	defer s.enqMu.Unlock()
	// 8 bytes: the queue's own length prefix.
	used := s.q.GetPendingBytes() + uint64(s.inflightBytes.Load())
	if used+uint64(len(block))+8 > uint64(s.r.QueueMaxBytes) {
		s.droppedFull.Add(uint64(n))
		if !s.full.Swap(true) {
			s.w.log.Error("remote_write queue is full: new samples are dropped until the remote catches up",
				"remote", s.label, "queue_bytes", used, "queue_max_bytes", s.r.QueueMaxBytes)
		}
		return
	}
	if s.full.Swap(false) {
		s.w.log.Warn("remote_write queue has room again", "remote", s.label, "dropped_samples_total", s.droppedFull.Load())
	}
	s.pending.Add(int64(n))
	s.q.MustWriteBlockIgnoreDisabledPQ(block)
}

// run sends blocks until shutdown: first the one left in flight by the
// last run, then the queue's, in order.
func (s *sender) run() {
	block, err := os.ReadFile(filepath.Join(s.dir, inflightFile))
	if err != nil {
		block = nil
	}
	s.inflightBytes.Store(int64(len(block)))
	backoff := s.w.o.MinBackoff
	for {
		if block == nil {
			if s.stopping.Load() {
				return
			}
			b, ok := s.q.MustReadBlock(nil)
			if !ok {
				return
			}
			block = b
			// Kept until accepted: a restart or crash now resends it
			// rather than losing it.
			if err := writeFileAtomic(filepath.Join(s.dir, inflightFile), block); err != nil {
				s.w.log.Error("remote_write: cannot save the block in flight; a crash now would lose it", "remote", s.label, "err", err)
			}
			s.inflightBytes.Store(int64(len(block)))
		}
		if len(block) < blockHeader {
			s.w.log.Error("remote_write: skipped a corrupt block in the queue", "remote", s.label, "bytes", len(block))
			s.done(&block)
			continue
		}
		n := int64(binary.BigEndian.Uint32(block))
		err := s.send(block[blockHeader:])
		switch {
		case err == nil:
			s.sent.Add(uint64(n))
			s.lastSuccess.Store(s.w.o.Now().UnixMilli())
			s.accepted.Store(true)
			if s.failing.Swap(false) {
				s.w.log.Info("remote_write: the remote accepts samples again", "remote", s.label)
			}
			backoff = s.w.o.MinBackoff
			s.pending.Add(-n)
			s.done(&block)
		case errors.Is(err, errPermanent):
			s.droppedRejected.Add(uint64(n))
			s.lastErr.Store(err.Error())
			s.w.log.Error("remote_write: the remote rejected a batch; it is dropped", "remote", s.label, "samples", n, "err", err)
			s.pending.Add(-n)
			s.done(&block)
		default:
			if s.stopping.Load() {
				return // the block stays in the inflight file
			}
			s.failed.Add(1)
			s.lastErr.Store(err.Error())
			if !s.failing.Swap(true) {
				s.w.log.Warn("remote_write: send failed; retrying until the remote accepts", "remote", s.label, "err", err)
			}
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
				return
			}
			backoff = min(backoff*2, s.w.o.MaxBackoff)
		}
	}
}

// done forgets the block just sent or dropped.
func (s *sender) done(block *[]byte) {
	*block = nil
	s.inflightBytes.Store(0)
	if err := os.Remove(filepath.Join(s.dir, inflightFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.w.log.Error("remote_write: cannot remove the sent block; it will be sent again after a restart", "remote", s.label, "err", err)
	}
}

// send posts one snappy-compressed WriteRequest. A nil error means the
// receiver accepted it; errPermanent (wrapped) that it refused it for good.
func (s *sender) send(body []byte) error {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, s.r.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: build request: %v", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", "nines")
	if tok := s.r.Token.Reveal(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// url.Error quotes the URL; ours carries no secret (the token is
		// a header), but user info in it would be: say only the label.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post to %s: %w", s.label, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5:
		return fmt.Errorf("%s answered %s: %s", s.label, resp.Status, bytes.TrimSpace(answer))
	default:
		return fmt.Errorf("%w: %s answered %s: %s", errPermanent, s.label, resp.Status, bytes.TrimSpace(answer))
	}
}

// shutdown stops reading new blocks and gives the request in flight a
// few seconds to finish before it is cancelled.
func (s *sender) shutdown() {
	s.stopping.Store(true)
	s.q.UnblockAllReaders()
	time.AfterFunc(3*time.Second, s.cancel)
}

// close runs after run returned: it saves the pending count and closes
// the queue (on disk, for the next Open).
func (s *sender) close() {
	s.cancel()
	if err := writeFileAtomic(filepath.Join(s.dir, pendingFile), []byte(strconv.FormatInt(max(s.pending.Load(), 0), 10))); err != nil {
		s.w.log.Warn("remote_write: cannot save the pending count", "remote", s.label, "err", err)
	}
	s.q.MustClose()
}

func (s *sender) status() Status {
	st := Status{
		Remote:         s.label,
		QueueBytes:     s.q.GetPendingBytes() + uint64(s.inflightBytes.Load()),
		QueueMaxBytes:  s.r.QueueMaxBytes,
		QueueFull:      s.full.Load(),
		PendingSamples: max(s.pending.Load(), 0),
		SentSamples:    s.sent.Load(),
		FailedSends:    s.failed.Load(),
		DroppedFull:    s.droppedFull.Load(),
		DroppedRejects: s.droppedRejected.Load(),
		LastError:      s.lastErr.Load().(string),
	}
	if ms := s.lastSuccess.Load(); s.accepted.Load() {
		st.LastSuccess = time.UnixMilli(ms)
	}
	return st
}
