package remotewrite

import "github.com/nines-project/nines/internal/metric"

// Metrics are each remote's counters and queue state, labelled remote
// (its name, or its URL without credentials). RemoteWriteBehind and
// RemoteWriteQueueFull (rules/packs/nines.yml) read them.
func (w *Writer) Metrics() []metric.Metric {
	set := &metric.Set{}
	for _, st := range w.Status() {
		r := st.Remote
		set.Add("nines_remote_write_samples_sent_total", "Samples the remote accepted.", metric.Counter, float64(st.SentSamples), "remote", r)
		set.Add("nines_remote_write_send_failures_total", "Sends that failed (network error, 5xx, 429) and are retried.", metric.Counter, float64(st.FailedSends), "remote", r)
		set.Add("nines_remote_write_samples_dropped_total", "Samples given up: queue_full (the disk queue reached queue_max_bytes) or rejected (the remote answered 4xx).", metric.Counter, float64(st.DroppedFull), "remote", r, "reason", "queue_full")
		set.Add("nines_remote_write_samples_dropped_total", "Samples given up: queue_full (the disk queue reached queue_max_bytes) or rejected (the remote answered 4xx).", metric.Counter, float64(st.DroppedRejects), "remote", r, "reason", "rejected")
		set.Add("nines_remote_write_queue_bytes", "Bytes queued on disk for the remote, the batch in flight included.", metric.Gauge, float64(st.QueueBytes), "remote", r)
		set.Add("nines_remote_write_queue_max_bytes", "The queue's bound (queue_max_bytes).", metric.Gauge, float64(st.QueueMaxBytes), "remote", r)
		set.Add("nines_remote_write_pending_samples", "Samples queued and not yet accepted by the remote.", metric.Gauge, float64(st.PendingSamples), "remote", r)
		full := 0.0
		if st.QueueFull {
			full = 1
		}
		set.Add("nines_remote_write_queue_full", "1 while the queue is full and new samples are dropped.", metric.Gauge, full, "remote", r)
		set.Add("nines_remote_write_last_success_timestamp_seconds", "When the remote last accepted a batch, or when this process started if it has not since.", metric.Gauge, float64(w.lastSuccessMs(r))/1000, "remote", r)
	}
	return set.Metrics
}

func (w *Writer) lastSuccessMs(label string) int64 {
	for _, s := range w.senders {
		if s.label == label {
			return s.lastSuccess.Load()
		}
	}
	return 0
}
