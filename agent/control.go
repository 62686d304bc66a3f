package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nines-project/nines/internal/mariadbd"
)

// controller starts and stops the server. Everything else (recovery,
// grastate.dat, SQL over the socket) goes through mariadbd.Server in both
// modes.
type controller interface {
	// pid is the running server's pid, 0 when it is stopped.
	pid() (int, error)
	// start launches the server and returns without waiting for it; the
	// Process is nil when the agent cannot watch the process itself.
	start(ctx context.Context, opts mariadbd.StartOptions) (*mariadbd.Process, error)
	// stop stops the server with pid: gracefully (SIGTERM, SIGKILL
	// after grace) or by SIGKILL at once. killed reports a SIGKILL.
	stop(ctx context.Context, pid int, graceful bool, grace time.Duration) (killed bool, err error)
}

var (
	_ controller = (*processControl)(nil)
	_ controller = (*systemdControl)(nil)
)

// processControl runs mariadbd itself, detached, as the sandbox does.
type processControl struct {
	srv *mariadbd.Server

	mu   sync.Mutex
	proc *mariadbd.Process // the last server this agent started
}

func (c *processControl) pid() (int, error) {
	pid, err := c.srv.Pid()
	if err != nil || pid != 0 {
		return pid, err
	}
	// A server just started has not written its pid file yet; the
	// process handle knows its pid.
	c.mu.Lock()
	p := c.proc
	c.mu.Unlock()
	if p != nil && c.srv.Owns(p.Pid) {
		return p.Pid, nil
	}
	return 0, nil
}

func (c *processControl) start(_ context.Context, opts mariadbd.StartOptions) (*mariadbd.Process, error) {
	p, err := c.srv.Start(opts)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.proc = p
	c.mu.Unlock()
	return p, nil
}

func (c *processControl) stop(ctx context.Context, pid int, graceful bool, grace time.Duration) (bool, error) {
	if graceful {
		return c.srv.StopPID(ctx, pid, grace)
	}
	if !c.srv.Owns(pid) {
		return false, nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return false, fmt.Errorf("kill %s: SIGKILL pid %d: %w", c.srv.Name, pid, err)
	}
	return true, waitGone(ctx, func() bool { return c.srv.Owns(pid) }, 10*time.Second,
		fmt.Sprintf("%s pid %d still alive after SIGKILL", c.srv.Name, pid))
}

// systemdControl starts and stops a systemd unit with systemctl. MariaDB's
// own mariadb.service recovers the start position itself (its ExecStart
// runs galera_recovery) and takes --wsrep-new-cluster from the
// _WSREP_NEW_CLUSTER environment variable, as galera_new_cluster sets it.
// A start position is therefore not passed: the agent checked that the
// unit will recover the one asked for (Agent.checkUnitPosition).
//
// Note that the unit's Restart= applies: Debian's mariadb.service has
// Restart=on-abort, so systemd, not the agent, restarts a server killed by
// a signal. Set Restart=no in a drop-in where the remediator should decide.
type systemdControl struct {
	unit      string
	systemctl string // path or name of systemctl
}

func (c *systemdControl) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.systemctl, args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

func (c *systemdControl) pid() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := c.run(ctx, "show", "--property=MainPID", "--value", c.unit)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(out)
	if err != nil {
		return 0, fmt.Errorf("systemctl show %s: MainPID %q is not a number", c.unit, out)
	}
	return pid, nil
}

const newClusterEnv = "_WSREP_NEW_CLUSTER"

// start runs `systemctl start`, which returns once the unit reports ready
// (mariadb.service is Type=notify) or has failed.
func (c *systemdControl) start(ctx context.Context, opts mariadbd.StartOptions) (*mariadbd.Process, error) {
	if opts.NewCluster {
		if _, err := c.run(ctx, "set-environment", newClusterEnv+"=--wsrep-new-cluster"); err != nil {
			return nil, err
		}
		defer func() {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_, _ = c.run(uctx, "unset-environment", newClusterEnv)
		}()
	}
	if _, err := c.run(ctx, "start", c.unit); err != nil {
		return nil, err
	}
	return nil, nil
}

func (c *systemdControl) stop(ctx context.Context, pid int, graceful bool, grace time.Duration) (bool, error) {
	if graceful {
		// systemd escalates to SIGKILL after the unit's TimeoutStopSec;
		// grace bounds how long the agent waits for that.
		sctx, cancel := context.WithTimeout(ctx, grace)
		_, err := c.run(sctx, "stop", c.unit)
		cancel()
		if err == nil {
			return false, nil
		}
		if ctx.Err() != nil {
			return false, err
		}
	}
	if _, err := c.run(ctx, "kill", "--signal=SIGKILL", "--kill-whom=main", c.unit); err != nil {
		return false, err
	}
	return true, waitGone(ctx, func() bool {
		p, err := c.pid()
		return err != nil || p == pid
	}, 10*time.Second, fmt.Sprintf("unit %s still has pid %d after SIGKILL", c.unit, pid))
}

// waitGone polls alive every 50 ms until it is false, ctx ends or limit
// passes; the error then says what is still alive.
func waitGone(ctx context.Context, alive func() bool, limit time.Duration, still string) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for alive() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", still, ctx.Err())
		case <-deadline.C:
			return errors.New(still)
		case <-tick.C:
		}
	}
	return nil
}
