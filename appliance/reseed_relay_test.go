package appliance

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nines-project/nines/agent"
)

// TestReseedRelayNamesABrokenDonor: when the donor's backup fails
// mid-stream, the target's upload is cut (it must never take a partial
// copy for a whole one) and the job's error says the donor broke.
func TestReseedRelayNamesABrokenDonor(t *testing.T) {
	donor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/replication/seed-stream" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Trailer", agent.SeedStatusTrailer)
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, strings.Repeat("x", 1<<20))
		w.Header().Set(agent.SeedStatusTrailer, "failed: mariadb-backup: exit status 1")
	}))
	defer donor.Close()
	var received atomic.Int64
	var sawEnd atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		received.Store(n)
		sawEnd.Store(err == nil)
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":"the stream broke"}`)
	}))
	defer target.Close()
	d := &replNode{name: "h:2", c: agent.NewClient(donor.URL, "t", nil)}
	n := &replNode{name: "h:3", c: agent.NewClient(target.URL, "t", nil)}
	_, err := n.Reseed(context.Background(), d, "h1:3306", false)
	if err == nil || !strings.Contains(err.Error(), "the donor's stream") || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("relay of a broken stream: %v, want an error naming the donor's failure", err)
	}
	if sawEnd.Load() {
		t.Errorf("the target read a clean end of a broken stream (%d bytes)", received.Load())
	}
}
