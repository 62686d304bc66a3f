package appliance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/appliance/config"
)

// The drill writer's table: one row per acknowledged write, keyed by the
// drill, so a drill reads back only its own rows.
const (
	drillTableSQL = `CREATE TABLE IF NOT EXISTS nines.drill_writes (
  drill VARCHAR(40) NOT NULL,
  seq BIGINT NOT NULL,
  written_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (drill, seq)
) ENGINE=InnoDB`
	drillInsertSQL = `INSERT INTO nines.drill_writes (drill, seq) VALUES (?, ?)`
	drillReadSQL   = `SELECT seq FROM nines.drill_writes WHERE drill = ?`
	drillDeleteSQL = `DELETE FROM nines.drill_writes WHERE drill = ?`
)

// drillWriter is an application independent of the probe: it writes
// numbered rows, one every 20 ms, through the addresses applications use
// (the probe's endpoints: a load balancer, else the nodes), keeping to one
// until it fails, as a client with a list of servers does; with follow,
// it moves instead to the address follow names (a replication cluster's
// primary as the appliance sees it). Every row the server acknowledged is
// remembered, to be read back at the end.
type drillWriter struct {
	id     string
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	acked    []int64
	lastAck  time.Time
	stall    time.Duration
	lastErr  error
	stopOnce sync.Once
	// mark and firstAfter: the first acknowledgement of a write sent
	// after mark (the kill done), when the cluster took writes again.
	mark, firstAfter time.Time
}

func drillDB(cl config.Cluster, addr string) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr = "tcp", addr
	cfg.User, cfg.Passwd, cfg.TLS = cl.Credentials.User, cl.Credentials.Password.Reveal(), cl.Credentials.TLSConfig
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, 3*time.Second, 3*time.Second
	cfg.InterpolateParams = true
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("connector for %s: %w", addr, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	return db, nil
}

// startDrillWriter creates the table if need be and starts writing.
// follow, if not nil, names the address to write to (one of the nodes),
// "" when it cannot tell.
func startDrillWriter(ctx context.Context, cl config.Cluster, id string, follow func() string) (*drillWriter, error) {
	addrs := cl.ProbeEndpoints()
	if len(addrs) == 0 || follow != nil {
		addrs = nil // not [:0]: the endpoints are the config's slice
		for _, n := range cl.Nodes {
			addrs = append(addrs, n.Address)
		}
	}
	// at is the address in use: the one follow names, else the first.
	pick := func(at int) int { return followed(addrs, at, follow) }
	at := pick(0)
	dbs := make([]*sql.DB, 0, len(addrs))
	for _, a := range addrs {
		db, err := drillDB(cl, a)
		if err != nil {
			for _, d := range dbs {
				d.Close()
			}
			return nil, err
		}
		dbs = append(dbs, db)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := dbs[at].ExecContext(cctx, drillTableSQL)
	cancel()
	if err != nil {
		for _, d := range dbs {
			d.Close()
		}
		return nil, fmt.Errorf("create nines.drill_writes through %s: %w", addrs[at], err)
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &drillWriter{id: id, cancel: cancel, done: make(chan struct{}), lastAck: time.Now()}
	go func() {
		defer close(w.done)
		defer func() {
			for _, d := range dbs {
				d.Close()
			}
		}()
		w.run(wctx, dbs, at, pick)
	}()
	return w, nil
}

// followed is the index in addrs of the address follow names, else at
// (follow nil, or naming no address of addrs: "" while the appliance
// sees no single primary).
func followed(addrs []string, at int, follow func() string) int {
	if follow != nil {
		if i := slices.Index(addrs, follow()); i >= 0 {
			return i
		}
	}
	return at
}

func (w *drillWriter) run(ctx context.Context, dbs []*sql.DB, at int, pick func(int) int) {
	for seq := int64(1); ctx.Err() == nil; seq++ {
		sent := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := dbs[at].ExecContext(wctx, drillInsertSQL, w.id, seq)
		cancel()
		now := time.Now()
		w.mu.Lock()
		if err == nil {
			w.acked = append(w.acked, seq)
			w.stall = max(w.stall, now.Sub(w.lastAck))
			w.lastAck = now
			if !w.mark.IsZero() && w.firstAfter.IsZero() && sent.After(w.mark) {
				w.firstAfter = now
			}
		} else if ctx.Err() == nil {
			w.lastErr = err
			at = pick((at + 1) % len(dbs)) // the next address, as a client would
		}
		w.mu.Unlock()
		pause := 20 * time.Millisecond
		if err != nil {
			pause = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// waitAcked waits until n writes were acknowledged.
func (w *drillWriter) waitAcked(ctx context.Context, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		w.mu.Lock()
		got, last := len(w.acked), w.lastErr
		w.mu.Unlock()
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d writes acknowledged within %s (last error: %v)", got, n, limit, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// markKilled notes the moment the kill was done: writes sent after it
// went to a cluster without the victim.
func (w *drillWriter) markKilled(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mark = t
}

// firstAckAfterKill is when the first write sent after markKilled was
// acknowledged; zero before that.
func (w *drillWriter) firstAckAfterKill() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.firstAfter
}

func (w *drillWriter) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// stop ends the writes and waits for the last one; the stall then
// includes the wait since the last acknowledged write.
func (w *drillWriter) stop() {
	w.stopOnce.Do(func() {
		w.cancel()
		<-w.done
	})
}

// lost reads the drill's rows back through the first of addrs that
// answers (Galera: any node, with wsrep_sync_wait so the read sees every
// write the cluster committed; replication: the primary, which holds
// every write it or its predecessor acknowledged that survived), counts
// the acknowledged ones missing, and removes the rows.
func (w *drillWriter) lost(ctx context.Context, cl config.Cluster, addrs []string) (int, error) {
	var errs []error
	for _, a := range addrs {
		missing, err := w.lostOn(ctx, cl, a)
		if err == nil {
			return missing, nil
		}
		errs = append(errs, err)
	}
	return 0, errors.Join(errs...)
}

func (w *drillWriter) lostOn(ctx context.Context, cl config.Cluster, addr string) (int, error) {
	db, err := drillDB(cl, addr)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("read back on %s: %w", addr, err)
	}
	defer conn.Close()
	if cl.Kind == nines.KindGalera {
		if _, err := conn.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 1"); err != nil {
			return 0, fmt.Errorf("read back on %s: %w", addr, err)
		}
	}
	rows, err := conn.QueryContext(ctx, drillReadSQL, w.id)
	if err != nil {
		return 0, fmt.Errorf("read back on %s: %w", addr, err)
	}
	defer rows.Close()
	present := map[int64]bool{}
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return 0, fmt.Errorf("read back on %s: %w", addr, err)
		}
		present[seq] = true
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read back on %s: %w", addr, err)
	}
	missing := 0
	for _, seq := range w.acked {
		if !present[seq] {
			missing++
		}
	}
	// The count is taken; the rows served their purpose.
	_, _ = conn.ExecContext(ctx, drillDeleteSQL, w.id)
	return missing, nil
}
