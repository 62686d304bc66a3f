// Package appliance wires nines together: configuration, the embedded
// store, the exporters and the HTTP API. It is the only package that knows
// all the others.
package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/appliance/store"
	"github.com/nines-project/nines/exporter"
)

// Options are the run-time choices that are not part of the config file.
type Options struct {
	// Listen overrides the config's listen address when not empty.
	Listen string
	Logger *slog.Logger
	// Ready, if not nil, is called once with the address the API listens
	// on, after the store is open and the listener bound.
	Ready func(addr string)
}

// App is a running appliance.
type App struct {
	cfg   *config.Config
	opts  Options
	log   *slog.Logger
	store *store.Store
	exp   *exporter.Exporter
	start time.Time
}

// Run starts the appliance from cfg and blocks until ctx ends, then shuts
// down in order: HTTP, scrapers, store (which flushes to disk).
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	listen := cfg.Listen
	if opts.Listen != "" {
		listen = opts.Listen
	}
	log := opts.Logger
	// The MySQL driver logs connection failures on its own; they are
	// already reported once per state change by the scrapers.
	_ = driver.SetLogger(slog.NewLogLogger(log.Handler(), slog.LevelDebug))

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	unlock, err := lockDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()

	var targets []exporter.Target
	for _, c := range cfg.Clusters {
		for _, n := range c.Nodes {
			targets = append(targets, exporter.Target{
				Cluster: c.Name, Kind: c.Kind, Address: n.Address,
				User: c.Credentials.User, Password: c.Credentials.Password.Reveal(),
				ReplicaStatus: c.CollectReplicaStatus(),
			})
		}
	}
	exp, err := exporter.New(targets, exporter.Options{
		Interval:          cfg.Scrape.Interval.Duration,
		Timeout:           cfg.Scrape.Timeout.Duration,
		VariablesInterval: cfg.Scrape.VariablesInterval.Duration,
		Logger:            log,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	defer ln.Close()

	st, err := store.Open(store.Options{DataDir: filepath.Join(cfg.DataDir, "tsdb"), Retention: cfg.Retention.Duration})
	if err != nil {
		return err
	}
	defer st.Close()

	app := &App{cfg: cfg, opts: opts, log: log, store: st, exp: exp, start: time.Now()}
	srv := &http.Server{Handler: app.routes(), ReadHeaderTimeout: 10 * time.Second}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		exp.Run(runCtx, newIngester(st).observe)
	}()

	serveErr := make(chan error, 1)
	go func() {
		var err error
		if cfg.TLS != nil {
			err = srv.ServeTLS(ln, cfg.TLS.CertFile, cfg.TLS.KeyFile)
		} else {
			err = srv.Serve(ln)
		}
		serveErr <- err
	}()
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	log.Info("nines is running", "api", fmt.Sprintf("%s://%s/api/v1/", scheme, ln.Addr()), "data_dir", cfg.DataDir, "nodes", len(targets))
	if opts.Ready != nil {
		opts.Ready(ln.Addr().String())
	}

	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("http server: %w", err)
	}
	shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = srv.Shutdown(shutdownCtx)
	cancel()
	wg.Wait()
	log.Info("nines stopped")
	return err
}

// lockDir takes an exclusive lock on dir so that two appliances never
// share a data directory.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "nines.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another nines process", dir)
		}
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
