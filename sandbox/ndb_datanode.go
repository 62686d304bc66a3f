package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Data node process behaviour.
const (
	ndbHeartbeatSend = 100 * time.Millisecond
	// ndbConnectFor is how long a data node retries reaching mgmd, as
	// ndbd's --connect-retries and --connect-retry-delay do.
	ndbConnectFor = 30 * time.Second
)

// ErrNodeShutdown is a data node's exit after it was told to shut down
// (declared dead, GCP stop); the CLI exits non-zero on it.
var ErrNodeShutdown = errors.New("forced node shutdown")

// RunNDBDataNode is `nines sandbox ndb datanode --dir DIR --node-id N
// [--initial]`:
// data node N of the NDB sandbox in dir, in the foreground, until ctx
// ends (a graceful stop), its link to mgmd ends, or mgmd tells it to
// shut down. It writes DIR/dataN/ndbd.pid and logs to DIR/dataN/ndbd.log.
// The simulator keeps no file system per node, so an initial start
// differs from a normal one only in its log line; a node restart always
// copies from the group peer here.
func RunNDBDataNode(ctx context.Context, dir string, id int, initial bool) error {
	nd, err := OpenNDB(dir)
	if err != nil {
		return err
	}
	p, err := nd.ndb().dataNode(id)
	if err != nil {
		return err
	}
	lf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("data node %d: %w", id, err)
	}
	defer lf.Close()
	logf := func(level, format string, args ...any) {
		fmt.Fprintf(lf, "%s [ndbd] %s -- Node %d: %s\n", time.Now().Format("2006-01-02 15:04:05"), level, id, fmt.Sprintf(format, args...))
	}
	if other := ndbPid(p); other != 0 && other != os.Getpid() {
		return fmt.Errorf("data node %d already runs as pid %d", id, other)
	}
	if err := os.WriteFile(p.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("data node %d: %w", id, err)
	}
	if initial {
		logf("INFO", "Initial start: the node's file system is cleared and reloaded from its node group")
	}
	logf("INFO", "Angel pid: %d started, connecting to the management server's link 127.0.0.1:%d", os.Getpid(), nd.ndb().LinkPort)
	conn, err := dialLink(ctx, nd.ndb().LinkPort)
	if err != nil {
		logf("ERROR", "Could not connect to the management server: %v", err)
		return fmt.Errorf("data node %d: %w", id, err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	fmt.Fprintf(conn, "hello %d %d\n", id, os.Getpid())
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.ReadString('\n')
	if err != nil {
		logf("ERROR", "No answer from the management server: %v", err)
		return fmt.Errorf("data node %d: %w", id, err)
	}
	conn.SetReadDeadline(time.Time{})
	if msg, ok := strings.CutPrefix(strings.TrimSpace(line), "refuse "); ok {
		logf("ERROR", "Refused by the management server: %s", msg)
		return fmt.Errorf("data node %d refused: %s", id, msg)
	}
	logf("INFO", "Connected; starting")
	lines := make(chan string)
	go func() {
		defer close(lines)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			lines <- strings.TrimSpace(l)
		}
	}()
	hb := time.NewTicker(ndbHeartbeatSend)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			logf("INFO", "Node shutdown initiated")
			fmt.Fprintf(conn, "bye\n")
			logf("INFO", "Node shutdown completed.")
			return nil
		case <-hb.C:
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			fmt.Fprintf(conn, "hb\n")
		case l, ok := <-lines:
			if !ok {
				// The link also stands in for the other data nodes'
				// transporters, so losing mgmd's process (not just its
				// mgm port, see mgmd-down) ends the simulated cluster,
				// unlike real NDB whose data nodes survive an mgmd loss.
				logf("ALERT", "Lost the link to the management server; shutting down")
				return fmt.Errorf("data node %d: link to mgmd lost", id)
			}
			verb, rest, _ := strings.Cut(l, " ")
			switch verb {
			case "status":
				f := strings.Fields(rest)
				if len(f) >= 2 && f[0] == "STARTED" {
					logf("INFO", "Started (version 8.0.44)")
				} else if len(f) == 3 {
					logf("INFO", "Start phase %s completed (%s)", f[1], strings.ReplaceAll(f[2], "_", " "))
				} else if len(f) == 2 {
					logf("INFO", "Start phase %s completed", f[1])
				}
			case "shutdown":
				logf("ALERT", "%s", rest)
				return fmt.Errorf("data node %d: %w: %s", id, ErrNodeShutdown, rest)
			}
		}
	}
}

func dialLink(ctx context.Context, port int) (net.Conn, error) {
	deadline := time.Now().Add(ndbConnectFor)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for {
		d := net.Dialer{Timeout: time.Second}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("reach mgmd on %s for %v: %w", addr, ndbConnectFor, err)
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return nil, err
		}
	}
}
