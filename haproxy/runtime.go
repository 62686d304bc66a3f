package haproxy

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Runtime talks to a running HAProxy over its runtime API: the unix
// stats socket the generated configuration opens (`stats socket PATH
// mode 600 level admin`). Each call opens one connection, sends one
// command and reads the answer until HAProxy closes it (non-interactive
// mode). The zero Timeout is DefaultRuntimeTimeout; a context deadline
// that comes sooner wins.
type Runtime struct {
	Socket  string
	Timeout time.Duration
}

// DefaultRuntimeTimeout bounds one runtime API command without a sooner
// context deadline. HAProxy answers in microseconds; a longer wait means
// it is stopped or hung.
const DefaultRuntimeTimeout = 2 * time.Second

// Server states SetState accepts (`set server B/S state ...`): ready puts
// a server back in service, drain takes no new connections but keeps the
// current ones, maint takes none and closes nothing by itself.
const (
	StateReady = "ready"
	StateDrain = "drain"
	StateMaint = "maint"
)

// ServerStat is one server line of `show stat`. Counters count since
// HAProxy started (or since `clear counters`).
type ServerStat struct {
	// Backend is the listener or backend (pxname), Server the server's
	// name in it (svname).
	Backend string
	Server  string
	// Status as HAProxy spells it: UP, DOWN, MAINT, DRAIN, NOLB, "no
	// check", or a transition such as "UP 1/2" (up, one failed check of
	// the two that take it down) and "DOWN 1/2". MAINT may carry a reason
	// in parentheses ("MAINT (via b/s)").
	Status string
	// CheckStatus is the last health check's result (L7OK, L7STS, L4CON,
	// L4TOUT ...), empty for a server without checks or in maintenance.
	CheckStatus string
	// Backup is true for a `backup` server.
	Backup bool
	// CurrentSessions (scur), TotalSessions (stot) and ConnectionErrors
	// (econ: connections to the server that failed).
	CurrentSessions  int64
	TotalSessions    int64
	ConnectionErrors int64
	// Downtime is how long the server has been DOWN in total;
	// LastChange how long ago its status last changed.
	Downtime   time.Duration
	LastChange time.Duration
}

// Up reports whether the server takes new connections: UP, including an
// UP server that failed fewer checks than take it down ("UP 1/2").
// DRAIN, NOLB, MAINT and DOWN are not up.
func (s ServerStat) Up() bool { return s.Status == "UP" || strings.HasPrefix(s.Status, "UP ") }

// State is Status without a transition or a reason: UP, DOWN, MAINT,
// DRAIN, NOLB or "no check" ("UP 1/2" is UP, "MAINT (via x/y)" MAINT).
func (s ServerStat) State() string {
	if s.Status == "no check" {
		return s.Status
	}
	st, _, _ := strings.Cut(s.Status, " ")
	return st
}

// RuntimeError is HAProxy's own answer to a command it refused ("No such
// server.", "Unknown command", "Permission denied").
type RuntimeError struct {
	Socket  string
	Command string
	Reply   string
}

func (e *RuntimeError) Error() string {
	return fmt.Sprintf("haproxy runtime API %s: %q refused: %s", e.Socket, e.Command, e.Reply)
}

// Command sends one command and returns HAProxy's answer. Only
// connection failures are errors here: a refusal comes back as text (the
// callers below tell one from the other, as its form depends on the
// command).
func (r Runtime) Command(ctx context.Context, command string) (string, error) {
	if strings.ContainsAny(command, "\n\r;") {
		return "", fmt.Errorf("haproxy runtime API %s: command %q: one command per call, without ';' or line breaks", r.Socket, command)
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultRuntimeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", r.Socket)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API: %w", err)
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return "", fmt.Errorf("haproxy runtime API %s: send %q: %w", r.Socket, command, err)
	}
	b, err := io.ReadAll(io.LimitReader(c, 16<<20))
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API %s: read the answer to %q: %w", r.Socket, command, err)
	}
	return string(b), nil
}

// Servers returns every server of every backend and listener, in
// HAProxy's order (frontend and backend summary lines left out).
func (r Runtime) Servers(ctx context.Context) ([]ServerStat, error) {
	text, err := r.Command(ctx, "show stat")
	if err != nil {
		return nil, err
	}
	out, err := ParseStat(text)
	if err != nil {
		return nil, fmt.Errorf("haproxy runtime API %s: show stat: %w", r.Socket, err)
	}
	return out, nil
}

// SetState sets a server's administrative state: StateReady, StateDrain
// or StateMaint. HAProxy answers an empty line when it did; anything else
// is its refusal, returned as a *RuntimeError.
func (r Runtime) SetState(ctx context.Context, backend, server, state string) error {
	switch state {
	case StateReady, StateDrain, StateMaint:
	default:
		return fmt.Errorf("haproxy: set %s/%s state %q: want %s, %s or %s", backend, server, state, StateReady, StateDrain, StateMaint)
	}
	return r.serverCommand(ctx, "set server %s/%s state "+state, backend, server)
}

// Health states SetHealth accepts (`set server B/S health ...`).
const (
	HealthUp   = "up"
	HealthDown = "down"
)

// SetHealth forces a checked server's health: up puts it in service
// now instead of after `rise` passing checks, down takes it out now.
// The checks go on and overrule it at their next result, so a forced
// state only saves the wait for checks that would say the same.
func (r Runtime) SetHealth(ctx context.Context, backend, server, health string) error {
	if health != HealthUp && health != HealthDown {
		return fmt.Errorf("haproxy: set %s/%s health %q: want %s or %s", backend, server, health, HealthUp, HealthDown)
	}
	return r.serverCommand(ctx, "set server %s/%s health "+health, backend, server)
}

// ShutdownSessions closes every client session on a server, so that
// clients of a fenced writer reconnect (to the new one) at once instead
// of finding out at their next write.
func (r Runtime) ShutdownSessions(ctx context.Context, backend, server string) error {
	return r.serverCommand(ctx, "shutdown sessions server %s/%s", backend, server)
}

// serverCommand runs a command on one server whose success is an empty
// answer; anything else is HAProxy's refusal, a *RuntimeError.
func (r Runtime) serverCommand(ctx context.Context, format, backend, server string) error {
	if !nameRE.MatchString(backend) || !nameRE.MatchString(server) {
		return fmt.Errorf("haproxy: %q/%q: backend and server are names of letters, digits, '_', '.', ':' and '-'", backend, server)
	}
	cmd := fmt.Sprintf(format, backend, server)
	reply, err := r.Command(ctx, cmd)
	if err != nil {
		return err
	}
	if reply = strings.TrimSpace(reply); reply != "" {
		return &RuntimeError{Socket: r.Socket, Command: cmd, Reply: oneLine(reply)}
	}
	return nil
}

// ParseStat reads `show stat` CSV (HAProxy 1.x to 3.x: columns are found
// by the header's names, so added columns do not matter) into its server
// lines. An answer without the header is an error naming its first line:
// it is a refusal, such as "Permission denied".
func ParseStat(text string) ([]ServerStat, error) {
	header, _, _ := strings.Cut(text, "\n")
	if !strings.HasPrefix(header, "# pxname,svname,") {
		return nil, fmt.Errorf("not show stat CSV: %q", oneLine(header))
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(text, "# ")))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, need := range []string{"status", "scur", "stot", "econ"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("no column %q in the header", need)
		}
	}
	var out []ServerStat
	var errs []error
	for n, rec := range recs[1:] {
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return rec[i]
			}
			return ""
		}
		num := func(name string) int64 {
			v := get(name)
			if v == "" {
				return 0
			}
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("line %d (%s/%s): %s %q is not a number", n+2, get("pxname"), get("svname"), name, v))
			}
			return x
		}
		sv := get("svname")
		// type 2 is a server; older versions lack the column.
		if t := get("type"); t != "" && t != "2" || sv == "FRONTEND" || sv == "BACKEND" {
			continue
		}
		out = append(out, ServerStat{
			Backend:          get("pxname"),
			Server:           sv,
			Status:           get("status"),
			CheckStatus:      strings.TrimPrefix(get("check_status"), "* "),
			Backup:           get("bck") == "1",
			CurrentSessions:  num("scur"),
			TotalSessions:    num("stot"),
			ConnectionErrors: num("econ"),
			Downtime:         time.Duration(num("downtime")) * time.Second,
			LastChange:       time.Duration(num("lastchg")) * time.Second,
		})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// oneLine keeps a reply on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
