package agent

import "testing"

func TestFirstErrorNamesWhyTheServerAborted(t *testing.T) {
	// The lines a Galera node wrote when its gcomm port was taken.
	tail := `2026-12-07  0:27:35 0 [Note] WSREP: gcomm: connecting to group 'resumedrill', peer '127.0.0.1:54406'
2026-12-07  0:27:35 0 [ERROR] WSREP: failed to open gcomm backend connection: 98: Failed to listen: bind: Address already in use: System error: 98 (Address already in use)
	 at ./galerautils/src/gu_asio_stream_react.cpp:listen():898
2026-12-07  0:27:35 0 [ERROR] WSREP: gcs connect failed: Address already in use
2026-12-07  0:27:35 0 [ERROR] Aborting`
	got := firstError(tail)
	want := "WSREP: failed to open gcomm backend connection: 98: Failed to listen: bind: Address already in use: System error: 98 (Address already in use)"
	if got != want {
		t.Fatalf("firstError = %q, want %q", got, want)
	}
	if got := firstError("2026-12-07  0:27:35 0 [Note] Starting MariaDB\n"); got != "" {
		t.Fatalf("a log without [ERROR] gave %q", got)
	}
}
