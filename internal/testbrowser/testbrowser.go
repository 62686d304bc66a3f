// Package testbrowser drives the console in a real headless Chromium for
// tests: one tab, with the page's uncaught JavaScript exceptions reported
// as test failures and screenshots saved as artefacts. A missing Chromium
// fails the test; it never skips.
package testbrowser

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is Debian's chromium, which .ci/run installs.
const ChromiumPath = "/usr/bin/chromium"

// Browser is one headless Chromium tab.
type Browser struct {
	t         testing.TB
	ctx       context.Context
	artefacts string
	shots     int

	mu         sync.Mutex
	exceptions []string
}

// New starts Chromium for t; it stops when t ends. Screenshots go to
// $NINES_ARTIFACTS (default the temporary directory's nines-artifacts),
// under the test's name.
func New(t testing.TB) *Browser {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		t.Fatalf("the console tests need Chromium at %s (apt-get install chromium; .ci/run installs it): %v", ChromiumPath, err)
	}
	dir := os.Getenv("NINES_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "nines-artifacts")
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Tests run as root, where Chromium's sandbox cannot start.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(ChromiumPath), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1000))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &Browser{t: t, ctx: ctx, artefacts: dir}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	go func() {
		for ev, err := range chromedp.Events(ctx, runtime.ExceptionThrown) {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.exceptions = append(b.exceptions, (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.exceptions {
			t.Errorf("uncaught JavaScript exception in the console: %s", e)
		}
	})
	return b
}

// Do runs steps, failing the test with what on an error or after 30 s.
func (b *Browser) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression (awaiting a promise) in the page.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return v
}

// Screenshot saves the whole page as a numbered PNG among the artefacts.
func (b *Browser) Screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	// The body's box, not the viewport: the whole page however long.
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("body")))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	b.shots++
	path := filepath.Join(b.artefacts, fmt.Sprintf("%02d-%s.png", b.shots, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// Login fills in the console's login form as a user would, and checks
// the page then names the user.
func (b *Browser) Login(user, password string) {
	b.t.Helper()
	// The console moves its login form into the page once its session
	// check fails; nodes found before that move are stale to Chromium
	// ("Could not find node with given id"), so wait for the move first.
	deadline := time.Now().Add(30 * time.Second)
	for !Eval[bool](b, `(() => { const f = document.getElementById('login'); return !!f && !f.hidden && f.parentElement.id === 'view'; })()`) {
		if time.Now().After(deadline) {
			b.t.Fatalf("browser: the login form was not shown within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Do("log in as "+user,
		chromedp.WaitVisible(chromedp.ID("login-user")),
		chromedp.SendKeys(chromedp.ID("login-user"), user),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("who-user")))
	if got := Eval[string](b, `document.getElementById('who-user').textContent`); got != user {
		b.t.Fatalf("logged in as %q, the page shows %q", user, got)
	}
}
