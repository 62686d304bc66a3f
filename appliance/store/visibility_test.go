package store

import (
	"net/url"
	"strconv"
	"testing"
	"time"
)

// TestFreshSampleVisible: a sample written with FlushSoon is answered by an
// instant query within 100 ms, even when it replaces a value of the same
// series a moment before.
func TestFreshSampleVisible(t *testing.T) {
	s, err := Open(Options{DataDir: t.TempDir(), Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := s.Handler()
	for i := 0; i < 20; i++ {
		now := time.Now()
		s.Write([]Series{sample("size", float64(i), now, "instance", "n1")})
		s.FlushSoon()
		for {
			r := get(t, h, "/api/v1/query", url.Values{"query": {"size"}})
			if len(r.Data.Result) == 1 && r.Data.Result[0].Value[1] == strconv.Itoa(i) {
				break
			}
			if time.Since(now) > 100*time.Millisecond {
				t.Fatalf("sample %d not visible after %s: %+v", i, time.Since(now), r.Data.Result)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
