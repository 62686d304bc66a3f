package report

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// The ledger counts a second a few seconds after it ends. A report asked
// up to now ends at the last counted second and says so in every format,
// instead of reading the uncounted tail as "no data"; once the ledger has
// caught up, the same request covers the whole period. Two requests for
// the same period thus never disagree about a second both counted.
func TestPeriodEndsAtLastCountedSecond(t *testing.T) {
	const cluster = "counting"
	now := time.Now().Truncate(time.Second)
	good := func(int64) string { return "good" }
	// The ledger has counted up to now-3s: its newest sample is stamped there.
	writeSeconds(t, cluster, now.Add(-60*time.Second), now.Add(-3*time.Second), good)
	req := Request{Cluster: cluster, From: now.Add(-30 * time.Second), To: now.Add(time.Hour), TargetPercent: 99.999, Now: now}

	r, err := Build(context.Background(), testStore, req)
	if err != nil {
		t.Fatal(err)
	}
	if !r.End.Equal(now.Add(-3*time.Second)) || !r.RequestedEnd.Equal(now) || !r.CountedTo.Equal(r.End) || !r.Partial() {
		t.Fatalf("end %s, requested %s, counted to %s, partial %v; want the end at the last counted second %s, requested %s",
			r.End, r.RequestedEnd, r.CountedTo, r.Partial(), now.Add(-3*time.Second), now)
	}
	if r.Good != 27 || r.NoData != 0 || r.Status != StatusOK {
		t.Errorf("good %d, no data %d, status %s; want 27 good seconds, none without data, OK", r.Good, r.NoData, r.Status)
	}
	to := FormatTime(r.End)
	for _, f := range Formats {
		var b bytes.Buffer
		if err := Render(&b, r, f); err != nil {
			t.Fatalf("render %s: %v", f, err)
		}
		text := b.String()
		switch f {
		case "pdf":
			text = PDFText(t, b.Bytes())
		case "html":
			text = htmlText(text)
		case "json": // says it in fields: end before requested_end
			if want := `"requested_end": "` + FormatTime(r.RequestedEnd) + `"`; !strings.Contains(text, want) || !strings.Contains(text, `"end": "`+to+`"`) {
				t.Errorf("json lacks %s and the end %s:\n%s", want, to, text)
			}
			continue
		}
		text = strings.Join(strings.Fields(text), " ")
		if !strings.Contains(text, "Counted up to "+to) || !strings.Contains(text, "were not counted yet") {
			t.Errorf("%s does not say it counted only up to %s:\n%s", f, to, text)
		}
	}

	// A period that starts after the last counted second has nothing to show yet.
	early := req
	early.From = now.Add(-2 * time.Second)
	if _, err := Build(context.Background(), testStore, early); !errors.Is(err, ErrNotCounted) {
		t.Errorf("period from %s with seconds counted up to %s: %v, want ErrNotCounted", early.From, r.End, err)
	}

	// The ledger catches up: the same request now covers the whole period.
	writeSeconds(t, cluster, now.Add(-60*time.Second), now, good)
	r2, err := Build(context.Background(), testStore, req)
	if err != nil {
		t.Fatal(err)
	}
	if !r2.End.Equal(now) || r2.Partial() || r2.Good != 30 || r2.NoData != 0 {
		t.Errorf("after catching up: end %s, partial %v, good %d, no data %d; want the whole period to %s, 30 good seconds", r2.End, r2.Partial(), r2.Good, r2.NoData, now)
	}
	var b bytes.Buffer
	if err := Render(&b, r2, "csv"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "were not counted yet") {
		t.Errorf("a complete report says part of it was not counted:\n%s", b.String())
	}
}
