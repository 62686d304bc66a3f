package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/nines-project/nines/galera"
)

// joinStart is where a started server's error log begins and the
// position it was started at.
type joinStart struct {
	pid    int
	offset int64
	pos    *galera.Position
}

// serverInfo is GET /v1/server-info. Reading the error log costs more
// than a status poll should, so it is its own endpoint, asked before and
// after a planned restart only.
func (a *Agent) serverInfo(ctx context.Context, _ struct{}) (ServerInfo, error) {
	pid, err := a.ctl.pid()
	if err != nil {
		return ServerInfo{}, err
	}
	if pid == 0 {
		return ServerInfo{}, conflict(errors.New("the server is not running"))
	}
	out := ServerInfo{Pid: pid}
	db, err := a.srv.DB()
	if err != nil {
		return out, err
	}
	defer db.Close()
	qctx, cancel := context.WithTimeout(ctx, sqlTimeout)
	defer cancel()
	var name string
	if err := db.QueryRowContext(qctx, "SELECT VERSION()").Scan(&out.Version); err != nil {
		return out, fmt.Errorf("read the server's version: %w", err)
	}
	if err := db.QueryRowContext(qctx, "SHOW GLOBAL STATUS LIKE 'Uptime'").Scan(&name, &out.UptimeSeconds); err != nil {
		return out, fmt.Errorf("read the server's uptime: %w", err)
	}
	a.mu.Lock()
	j := a.joined
	a.mu.Unlock()
	if a.cfg.IsGalera() && j.pid == pid && j.pos != nil {
		out.StartPosition = j.pos.String()
		out.StateTransfer, out.StateTransferLine, _ = galera.JoinMethod(a.srv.LogSince(j.offset), *j.pos)
	}
	return out, nil
}
