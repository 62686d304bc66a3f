package console

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	for _, tt := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy", "198.51.100.7:4000", nil, "198.51.100.7"},
		{"untrusted peer's header is ignored", "203.0.113.5:4000", []string{"192.0.2.1"}, "203.0.113.5"},
		{"trusted proxy", "10.1.1.1:4000", []string{"192.0.2.1"}, "192.0.2.1"},
		{"rightmost untrusted", "10.1.1.1:4000", []string{"198.51.100.66, 192.0.2.1, 10.2.2.2"}, "192.0.2.1"},
		{"over several header lines", "10.1.1.1:4000", []string{"198.51.100.66", "192.0.2.1"}, "192.0.2.1"},
		{"all trusted", "10.1.1.1:4000", []string{"10.3.3.3"}, "10.1.1.1"},
		{"garbled", "10.1.1.1:4000", []string{"not-an-ip"}, "10.1.1.1"},
		{"trusted proxy, no header", "10.1.1.1:4000", nil, "10.1.1.1"},
		{"IPv6", "[2001:db8::1]:4000", []string{"2001:db9::5"}, "2001:db9::5"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/console/login", nil)
		r.RemoteAddr = tt.peer
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientAddr(r, trusted); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestLoginFloodFromOneAddress: 40 random-name logins a second from one
// address are turned away per address before they reach the password
// checks, so a real user elsewhere still logs in at once.
func TestLoginFloodFromOneAddress(t *testing.T) {
	f := newFixture(t, defaultUsers(t), false)
	limited := 0
	for i := range 40 {
		w := f.do(req{method: http.MethodPost, path: "/console/login", body: loginBody(fmt.Sprintf("bot%d", i), "guess-guess"), remote: "198.51.100.9:1000"})
		if w.Code == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited != 40-addrBurst {
		t.Errorf("%d of 40 flood logins limited, want %d (all after the burst of %d)", limited, 40-addrBurst, addrBurst)
	}
	start := time.Now()
	if w := f.do(req{method: http.MethodPost, path: "/console/login", body: loginBody("otto", passwords["otto"]), remote: "192.0.2.44:1000"}); w.Code != http.StatusOK {
		t.Errorf("real login from another address during the flood: %d %s", w.Code, w.Body)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("real login took %s", d)
	}
	// The bucket refills: one a second.
	f.clock.advance(time.Second)
	if w := f.do(req{method: http.MethodPost, path: "/console/login", body: loginBody("otto", passwords["otto"]), remote: "198.51.100.9:1000"}); w.Code != http.StatusOK {
		t.Errorf("login from the flooding address a second later: %d", w.Code)
	}
}

// TestLockoutBehindProxyIsPerClient: behind a trusted proxy, five bad
// guesses lock the name for the guessing client only.
func TestLockoutBehindProxyIsPerClient(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trusted []netip.Prefix
		want    int
	}{
		{"trusted proxy", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, http.StatusOK},
		// Without trusted_proxies every client is the proxy: the lockout
		// hits everybody, as before (the setting is what fixes it).
		{"proxy not trusted", nil, http.StatusTooManyRequests},
	} {
		f := newFixture(t, defaultUsers(t), false)
		f.con.opts.TrustedProxies = tt.trusted
		via := func(client, pw string) int {
			w := f.do(req{method: http.MethodPost, path: "/console/login", body: loginBody("otto", pw), remote: "10.0.0.2:5000", xff: client})
			return w.Code
		}
		for range maxFailures {
			via("203.0.113.66", "guess-guess")
		}
		if code := via("203.0.113.66", passwords["otto"]); code != http.StatusTooManyRequests {
			t.Errorf("%s: the guesser after %d failures: %d, want 429", tt.name, maxFailures, code)
		}
		if code := via("192.0.2.10", passwords["otto"]); code != tt.want {
			t.Errorf("%s: otto from another client through the proxy: %d, want %d", tt.name, code, tt.want)
		}
	}
}
