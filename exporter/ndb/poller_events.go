package ndb

import (
	"context"
	"time"

	ndbmsg "github.com/nines-project/nines/ndb"
)

// listen keeps a `listen event` session open on the first management
// server that accepts one, in order, and kicks a round for every event
// and on each (re)connection (events may have been missed meanwhile).
// It counts data nodes' forced stops (forced_stops.go) before the kick,
// so the round it wakes carries the count, and times global checkpoints
// (gcp.go) without a kick.
// When every server refuses, it waits, doubling from 100 ms up to
// MaxBackoff; a session that was accepted resets the wait.
func (p *Poller) listen(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		for _, m := range p.mgms {
			addr := m.cfg.Addr
			accepted := false
			err := m.ListenEventsReady(ctx, nil, func() {
				accepted = true
				p.gcp.opened(p.cfg.Now())
				p.stream.Store(&addr)
				p.Kick()
			}, func(ev ndbmsg.Event) {
				// A GCP completes every 2 s: it is timed, and wakes no
				// round (the next tick reads the age).
				if p.gcp.add(ev, p.cfg.Now()) || ev.Type == ndbmsg.EventGlobalCheckpointStarted {
					return
				}
				p.log.Debug("ndb event", "type", ev.Type.String(), "source", ev.SourceNodeID)
				if p.stops.add(ev) {
					code, _ := ev.Get("error")
					p.log.Warn("ndb data node shut down on an error", "node_id", ev.SourceNodeID, "error", code, "reason", ForcedStopReason(ev))
				}
				p.Kick()
			})
			if ctx.Err() != nil {
				return
			}
			if accepted {
				p.stream.Store(nil)
				p.Kick()
				backoff = 100 * time.Millisecond
				p.log.Warn("ndb event stream ended", "server", addr, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, p.cfg.MaxBackoff)
	}
}
