package store

import (
	"context"
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

// TestQueryInProcess: the rule engine's in-process query sees what the
// HTTP API sees, at millisecond precision, and drops stale series.
func TestQueryInProcess(t *testing.T) {
	s, err := Open(Options{DataDir: t.TempDir(), Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	s.Write([]Series{
		sample("up", 1, now.Add(-2*time.Second), "instance", "a"),
		sample("up", 0, now.Add(-time.Second), "instance", "a"),
		sample("up", 1, now.Add(-time.Second), "instance", "b"),
		sample("up", StaleNaN, now.Add(-500*time.Millisecond), "instance", "b"),
	})
	s.Flush()
	got, err := s.Query(context.Background(), `up == 0`, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Labels["instance"] != "a" || got[0].Labels["__name__"] != "up" || got[0].Value != 0 {
		t.Errorf("up == 0: %+v, want only a", got)
	}
	got, _ = s.Query(context.Background(), `up`, now)
	if len(got) != 1 {
		t.Errorf("up: %+v, want b gone after its staleness marker", got)
	}
	if _, err := s.Query(context.Background(), `up ==`, now); err == nil {
		t.Error("a broken expression gave no error")
	}
}
