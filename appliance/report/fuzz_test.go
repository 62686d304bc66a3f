package report

import (
	"errors"
	"testing"
	"time"
)

// FuzzParseRange feeds the from and to of a report request: either an
// error that names the parameter, or a non-empty period that ends no
// later than now and lasts at most MaxPeriod.
func FuzzParseRange(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""}, {"month", "now"}, {"30d", ""}, {"12h", "2026-11-30"}, {"2026-11-01", "2026-11-30"},
		{"2026-11-01T00:00:00Z", "2026-11-02T00:00:00+02:00"}, {"-5d", ""}, {"9999999999d", ""}, {"0001-01-01", ""},
		{"1ns", ""}, {"2026-02-30", ""},
	} {
		f.Add(s[0], s[1])
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, fromS, toS string) {
		from, to, err := ParseRange(fromS, toS, now)
		if err != nil {
			var re *RangeError
			if !errors.As(err, &re) || (re.Param != "from" && re.Param != "to") {
				t.Fatalf("ParseRange(%q, %q): %v does not name the parameter", fromS, toS, err)
			}
			return
		}
		if !from.Before(to) || to.After(now) || to.Sub(from) > MaxPeriod {
			t.Fatalf("ParseRange(%q, %q) = %s, %s: not a period of at most %s ending by %s", fromS, toS, from, to, MaxPeriod, now)
		}
	})
}
