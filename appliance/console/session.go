package console

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// Session is one logged-in console user. Sessions live in memory only: a
// restart of the appliance logs everybody out, which is the price of never
// writing a credential to disk.
type Session struct {
	ID      string
	User    string
	Role    string
	CSRF    string // the value mutating requests must echo in HeaderCSRF
	Expires time.Time
}

// sessions is the server-side session store, keyed by the random id the
// cookie carries.
type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	now func() time.Time
	m   map[string]Session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, m: map[string]Session{}}
}

// randomID is 32 random bytes in hex: unguessable, and safe in a cookie.
func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}

// create starts a session for user and drops every expired one, so the
// map never grows with abandoned logins.
func (s *sessions) create(user, role string) Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for id, x := range s.m {
		if !now.Before(x.Expires) {
			delete(s.m, id)
		}
	}
	x := Session{ID: randomID(), User: user, Role: role, CSRF: randomID(), Expires: now.Add(s.ttl)}
	s.m[x.ID] = x
	return x
}

// get returns the live session with id; an expired one is removed.
func (s *sessions) get(id string) (Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.m[id]
	if !ok {
		return Session{}, false
	}
	if !s.now().Before(x.Expires) {
		delete(s.m, id)
		return Session{}, false
	}
	return x, true
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// failures limits password guessing per user name and remote address:
// after maxFailures wrong passwords within failWindow, further attempts are
// refused until the window has passed since the last failure.
type failures struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]failCount
}

type failCount struct {
	n    int
	last time.Time
}

const (
	maxFailures = 5
	failWindow  = time.Minute
)

func (f *failures) blocked(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.m[key]
	if !ok {
		return false
	}
	if f.now().Sub(c.last) >= failWindow {
		delete(f.m, key)
		return false
	}
	return c.n >= maxFailures
}

func (f *failures) fail(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	for k, c := range f.m {
		if now.Sub(c.last) >= failWindow {
			delete(f.m, k)
		}
	}
	c := f.m[key]
	f.m[key] = failCount{n: c.n + 1, last: now}
}

func (f *failures) reset(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, key)
}
