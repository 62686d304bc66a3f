package appliance

import (
	"log/slog"
	"net/http"
	"path/filepath"
	"syscall"

	"github.com/labstack/echo/v4"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/appliance/remotewrite"
)

// openRemoteWrite opens the disk queues of the config's remote_write
// receivers under data_dir/remote_write and starts their senders.
func openRemoteWrite(cfg *config.Config, log *slog.Logger) (*remotewrite.Writer, error) {
	remotes := make([]remotewrite.Remote, len(cfg.RemoteWrite))
	var bound int64
	for i, r := range cfg.RemoteWrite {
		remotes[i] = remotewrite.Remote{Name: r.Name, URL: r.URL, Token: r.BearerToken, TLS: r.TLSConfig, QueueMaxBytes: r.QueueMaxBytes}
		bound += r.QueueMaxBytes
	}
	// The queues share data_dir's disk with the store, and a disk that
	// fills stops both: say so now rather than when a receiver is down.
	var st syscall.Statfs_t
	if err := syscall.Statfs(cfg.DataDir, &st); err == nil {
		if free := int64(st.Bavail) * st.Bsize; bound > free {
			log.Warn("remote_write queues may grow larger than the free space of data_dir; lower queue_max_bytes",
				"queue_max_bytes_total", bound, "free_bytes", free)
		}
	}
	return remotewrite.Open(remotewrite.Options{Dir: filepath.Join(cfg.DataDir, "remote_write"), Remotes: remotes, Logger: log})
}

// remoteWriteStatus answers GET /api/v1/remote_write: each receiver's
// queue, counters and last error (never its token). Empty without
// remote_write.
func (a *App) remoteWriteStatus(c echo.Context) error {
	data := []remotewrite.Status{}
	if a.rw != nil {
		data = a.rw.Status()
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": data})
}
