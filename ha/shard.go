package ha

import (
	"context"
	"hash/fnv"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Owner is the member that owns cluster by rendezvous (highest random
// weight) hashing: each member scores hash(cluster, member) and the
// highest score wins. When a member leaves, only its own clusters move,
// each to the member that scored second for it; when one joins, it takes
// only the clusters it now scores highest for. "" when members is empty.
func Owner(cluster string, members []string) string {
	best, bestScore := "", uint64(0)
	for _, m := range members {
		s := score(cluster, m)
		// Ties (astronomically rare) go to the smaller name, so every
		// appliance picks the same owner whatever the order of members.
		if best == "" || s > bestScore || (s == bestScore && m < best) {
			best, bestScore = m, s
		}
	}
	return best
}

// score is FNV-1a of cluster and member, finished with splitmix64's
// mixer: FNV alone leaves names that differ in their last byte with
// close scores, which would skew the spread.
func score(cluster, member string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(cluster))
	h.Write([]byte{0})
	h.Write([]byte(member))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// membersKey is the folder of the live appliances' keys.
func (e *Elector) membersKey() string { return e.cfg.Prefix + "/members/" }

// Owns reports whether this appliance should watch cluster (scrape,
// probe, send its alerts): always without sharding; with it, when the
// cluster hashes to this appliance among the members it last saw.
// Before it first read them it watches every cluster, and when it loses
// etcd it keeps its last share: monitoring never goes blind for want of
// etcd (only acting needs it, and campaigns run in a session only).
func (e *Elector) Owns(cluster string) bool {
	if !e.cfg.Shard {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.members == nil || Owner(cluster, e.members) == e.cfg.Name
}

// Owner is the appliance that owns cluster as this appliance last saw
// the membership; "" without sharding, or before it first read it.
func (e *Elector) Owner(cluster string) string {
	if !e.cfg.Shard {
		return ""
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return Owner(cluster, e.members)
}

// Members are the live appliances as last seen in etcd, sorted; nil
// without sharding or before the first read.
func (e *Elector) Members() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.members...)
}

func (e *Elector) setMembers(m []string) {
	sort.Strings(m)
	e.mu.Lock()
	changed := strings.Join(e.members, ",") != strings.Join(m, ",")
	e.members = m
	e.mu.Unlock()
	if changed {
		e.log.Info("team membership", "members", strings.Join(m, ","))
	}
}

// shard runs for one session when sharding: it joins the team (a key
// under membersKey on the session's lease, so it vanishes with the
// lease when this appliance dies), watches the membership and campaigns
// for exactly the clusters this appliance owns, resigning those it no
// longer owns. Ownership only decides who campaigns: the election stays
// the safety, so two appliances that briefly both think they own a
// cluster still never both lead it.
func (e *Elector) shard(sctx context.Context, s *concurrency.Session) {
	key := e.membersKey() + e.cfg.Name
	for {
		pctx, cancel := context.WithTimeout(sctx, e.cfg.Lease)
		_, err := e.cli.Put(pctx, key, e.cfg.Name, clientv3.WithLease(s.Lease()))
		cancel()
		if err == nil {
			break
		}
		if sctx.Err() != nil {
			return
		}
		e.log.Warn("join the team", "key", key, "err", err)
		select {
		case <-sctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}

	running := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	defer func() {
		for _, stop := range running {
			stop()
		}
		wg.Wait()
	}()
	apply := func(set map[string]bool) {
		if !set[e.cfg.Name] {
			// Its own key gone is its lease gone: the session ends now and
			// the next one joins again. Until then keep the last share.
			return
		}
		members := make([]string, 0, len(set))
		for m := range set {
			members = append(members, m)
		}
		e.setMembers(members)
		for _, c := range e.clusters {
			own := Owner(c, members) == e.cfg.Name
			stop, campaigning := running[c]
			switch {
			case own && !campaigning:
				cctx, cancel := context.WithCancel(sctx)
				running[c] = cancel
				wg.Add(1)
				go func() {
					defer wg.Done()
					e.campaign(cctx, s, c)
				}()
			case !own && campaigning:
				stop()
				delete(running, c)
			}
		}
	}
	for sctx.Err() == nil {
		gctx, cancel := context.WithTimeout(sctx, e.cfg.Lease)
		resp, err := e.cli.Get(gctx, e.membersKey(), clientv3.WithPrefix())
		cancel()
		if err != nil {
			e.log.Warn("read the team's members", "err", err)
			select {
			case <-sctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		set := map[string]bool{}
		for _, kv := range resp.Kvs {
			set[strings.TrimPrefix(string(kv.Key), e.membersKey())] = true
		}
		apply(set)
		// Changes after the read, none missed; a broken watch reads again.
		wctx, stopWatch := context.WithCancel(clientv3.WithRequireLeader(sctx))
		wch := e.cli.Watch(wctx, e.membersKey(), clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
		for wr := range wch {
			if wr.Err() != nil {
				e.log.Warn("watch the team's members", "err", wr.Err())
				break
			}
			for _, ev := range wr.Events {
				name := strings.TrimPrefix(string(ev.Kv.Key), e.membersKey())
				if ev.Type == clientv3.EventTypeDelete {
					delete(set, name)
				} else {
					set[name] = true
				}
			}
			apply(set)
		}
		stopWatch()
	}
}
