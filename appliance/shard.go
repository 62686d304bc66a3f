package appliance

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Sharding (ha.shard): the clusters are spread over the live appliances
// of the team; each scrapes, probes, sends alerts for and campaigns for
// the clusters it owns only, writes what it sees to the shared store and
// reads the whole fleet back from there. Ownership is a hint, the etcd
// election the safety: two appliances that briefly both think they own
// a cluster both scrape it, but only the leader acts.

// sharded reports whether this appliance is one of a sharded team.
func (a *App) sharded() bool { return a.cfg.HA != nil && a.cfg.HA.Shard }

// owns says whether this appliance watches cluster: always, unless it
// is one of a sharded team and the cluster is another member's. Safe
// from any goroutine Run starts (a.team is set before them).
func (a *App) owns(cluster string) bool {
	return !a.sharded() || a.team == nil || a.team.Owns(cluster)
}

// clusterOwner is the member owning cluster ("" unless sharded, or while
// this appliance has no etcd session) and whether this appliance leads it.
func (a *App) clusterOwner(cluster string) (owner string, leads bool) {
	if a.team == nil {
		return "", false
	}
	_, _, leads = a.team.Lead(cluster)
	return a.team.Owner(cluster), leads
}

// storeNode is a node as the shared store last saw it: up or not, and
// when the sample was taken.
type storeNode struct {
	up bool
	at time.Time
}

// storeNodes reads mysql_up of every node from the store (the shared one
// when sharding): the health of the clusters another appliance scrapes.
// Keyed by cluster and instance; empty when the store cannot answer.
func (a *App) storeNodes(ctx context.Context) map[string]storeNode {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	now := time.Now()
	out := map[string]storeNode{}
	up, err := a.query.Query(ctx, "mysql_up", now)
	if err != nil {
		a.log.Warn("read the fleet's mysql_up from the store", "err", err)
		return out
	}
	for _, s := range up {
		out[s.Labels["cluster"]+"\x00"+s.Labels["instance"]] = storeNode{up: s.Value == 1}
	}
	at, err := a.query.Query(ctx, "timestamp(mysql_up)", now)
	if err != nil {
		return out
	}
	for _, s := range at {
		k := s.Labels["cluster"] + "\x00" + s.Labels["instance"]
		if n, ok := out[k]; ok {
			n.at = time.UnixMilli(int64(s.Value * 1000))
			out[k] = n
		}
	}
	return out
}

// fromStore fills nv, a node this appliance does not scrape, from the
// store's last sample of it.
func fromStore(nv *nodeView, s storeNode, ok bool) {
	nv.From = "store"
	if !ok {
		nv.Error = "no recent sample in the store"
		return
	}
	nv.Up = s.up
	if !s.at.IsZero() {
		nv.ScrapedAt = s.at.UTC().Format("2006-01-02T15:04:05.000Z")
	}
}

// haView is GET /api/v1/ha: this appliance, the team as it sees it and
// who owns and who (of it) leads each cluster.
type haView struct {
	Enabled  bool            `json:"enabled"`
	Name     string          `json:"name,omitempty"`
	Shard    bool            `json:"shard"`
	EtcdUp   bool            `json:"etcd_up"`
	Members  []string        `json:"members"`
	Clusters []haClusterView `json:"clusters"`
}

type haClusterView struct {
	Name string `json:"name"`
	// Owner is the member that watches and campaigns for the cluster
	// (sharding only).
	Owner string `json:"owner,omitempty"`
	// Leader: this appliance holds the cluster's etcd election, so it
	// is the one that acts on it.
	Leader bool `json:"leader"`
}

func (a *App) haStatus(c echo.Context) error {
	v := haView{Members: []string{}, Clusters: []haClusterView{}}
	if a.team != nil {
		v.Enabled, v.Name, v.Shard, v.EtcdUp = true, a.team.Name(), a.sharded(), a.team.EtcdUp()
		if m := a.team.Members(); m != nil {
			v.Members = m
		}
		for _, cl := range a.cfg.Clusters {
			owner, leads := a.clusterOwner(cl.Name)
			v.Clusters = append(v.Clusters, haClusterView{Name: cl.Name, Owner: owner, Leader: leads})
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": v})
}

// ownedOnly keeps the alerts of the clusters this appliance owns (and
// those of no cluster): with sharding every appliance evaluates the
// rules over the whole shared store, and each cluster's alerts must be
// sent once, by its owner.
func (a *App) ownedOnly(labels map[string]string) bool {
	cl, ok := labels["cluster"]
	return !ok || a.owns(cl)
}
