//go:build cluster

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nines-project/nines/sandbox"
)

// TestConsoleSwitchover is the planned switchover as an operator makes it
// from the console: log in through the form, open a semi-sync replication
// cluster (behind HAProxy) whose page shows n1 as primary and a "Make
// primary" button on each replica, cancel a switchover from the job form,
// then click "Make primary" on n3, confirm the question that names the
// cluster, the primary and the target, and watch the page show the new
// roles without a reload while the job succeeds. A viewer sees no button.
func TestConsoleSwitchover(t *testing.T) {
	const cluster = "consw"
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sb := startReplicationSandbox(t, sandbox.Options{ClusterName: cluster, SemiSync: true, HAProxy: true, Listen: listen})
	addConsoleUser(t, sb, "olga", "operator", "operator-password-1")
	addViewer(t, sb, "vic", "viewer-password-1")
	a := startApplianceOn(t, ninesBin, listen, sb.ConfigPath(), sb.TokenPath())
	waitFor(t, a.started, 30*time.Second, "appliance ready", func() bool {
		code, err := a.get("/readyz", nil, nil)
		return err == nil && code == 200
	})
	old, to := sb.Nodes()[0], sb.Nodes()[2]

	b := newBrowser(t, a.base)
	b.do("open the cluster page", chromedp.Navigate(a.base+"/#/cluster/"+cluster))
	b.login("olga", "operator-password-1")
	b.do("topology", chromedp.WaitVisible(chromedp.ID("topology")))
	roles := func() map[string]string {
		rows := eval[[][2]string](b, `[...document.querySelectorAll('#topology tr[data-node]')].map(r => [r.dataset.node, r.dataset.role || ''])`)
		out := map[string]string{}
		for _, r := range rows {
			out[r[0]] = r[1]
		}
		return out
	}
	buttons := func() []string {
		return eval[[]string](b, `[...document.querySelectorAll('#topology button[data-switchover-to]')].map(x => x.dataset.switchoverTo)`)
	}
	waitFor(t, time.Now(), 30*time.Second, "the page to show n1 primary, two replicas with a Make primary button each", func() bool {
		r := roles()
		return r[old.Address()] == "primary" && r[sb.Nodes()[1].Address()] == "replica" && r[to.Address()] == "replica" && len(buttons()) == 2
	})
	for _, x := range buttons() {
		if x == old.Address() {
			t.Errorf("the primary %s has a Make primary button", x)
		}
	}
	loaded := b.loadedAt()
	b.screenshot("replication-cluster-page")

	// The job form offers a switchover on a replication cluster (and no
	// Galera recovery); cancelling its confirmation starts nothing.
	kinds := eval[[]string](b, `[...document.querySelectorAll('#start-job select[name=kind] option')].map(o => o.value)`)
	if strings.Join(kinds, ",") != "backup,verify,switchover,replication-rolling-restart" {
		t.Errorf("job kinds offered on a replication cluster: %v, want backup, verify, switchover, replication-rolling-restart", kinds)
	}
	b.do("ask for a switchover through the form",
		chromedp.SetValue(chromedp.CSS(`#start-job select[name=kind]`), "switchover"),
		chromedp.SetValue(chromedp.CSS(`#start-job select[name=node]`), to.Address()),
		chromedp.Click(chromedp.CSS(`#start-job button`)),
		chromedp.WaitVisible(chromedp.CSS(`dialog#confirm[open]`)),
		chromedp.Click(chromedp.CSS(`dialog#confirm button[value=no]`)))
	waitFor(t, time.Now(), 5*time.Second, "the confirmation to close", func() bool {
		return eval[bool](b, `document.querySelector('dialog#confirm') === null`)
	})
	h := &healer{appliance: a, sb: sb}
	if jobs := h.jobs(t); len(jobs) != 0 {
		t.Fatalf("a cancelled switchover started %d jobs: %+v", len(jobs), jobs)
	}

	// The button: the question names the cluster, the primary and the
	// target; confirming starts the job.
	eval[bool](b, fmt.Sprintf(`document.querySelector('#topology button[data-switchover-to=%q]').click() === undefined`, to.Address()))
	b.do("the confirmation", chromedp.WaitVisible(chromedp.CSS(`dialog#confirm[open]`)))
	question := eval[string](b, `document.querySelector('dialog#confirm p').textContent`)
	for _, want := range []string{cluster, old.Address(), to.Address()} {
		if !strings.Contains(question, want) {
			t.Errorf("the confirmation %q does not name %s", question, want)
		}
	}
	b.screenshot("switchover-confirm")
	b.do("confirm", chromedp.Click(chromedp.CSS(`dialog#confirm button[value=yes]`)))
	confirmed := time.Now()

	waitFor(t, confirmed, 10*time.Second, "the page to report the job's start", func() bool {
		return eval[string](b, `document.getElementById('status').textContent`) != ""
	})
	if st := eval[string](b, `document.getElementById('status').textContent`); !strings.HasSuffix(st, ": done") {
		t.Fatalf("starting the switchover from the page: %s", st)
	}
	var job jobView
	took := waitFor(t, confirmed, 30*time.Second, "the switchover job to end", func() bool {
		for _, j := range h.jobs(t) {
			if j.Runbook == "replication-switchover" && j.State != "running" && j.State != "pending" && j.State != "" {
				job = j
				return true
			}
		}
		return false
	})
	t.Logf("job %s %s on %s: %s (%s)", job.ID, job.State, job.Target, stepList(job), job.Reason)
	if job.State != "succeeded" || job.DryRun || job.Target != to.Address() {
		t.Fatalf("switchover job %s (dry run %v, target %q): %s; want succeeded on %s", job.State, job.DryRun, job.Target, job.Reason, to.Address())
	}
	t.Logf("measured: switchover to %s succeeded %s after the click on Confirm", to.Name, took.Round(time.Millisecond))

	// What a user checks: the clicked replica is the writable primary,
	// the old primary and the other replica replicate from it.
	if !writableSource(t, sb, to.Name) {
		t.Errorf("%s is not the writable primary after the switchover", to.Name)
	}
	for _, n := range []string{old.Name, sb.Nodes()[1].Name} {
		waitFor(t, time.Now(), 10*time.Second, n+" replicating from "+to.Name, func() bool { return replicatesFrom(t, sb, n, to) })
	}
	// The page shows it without a reload, the followed job open.
	shown := waitFor(t, confirmed, 15*time.Second, "the page to show "+to.Address()+" primary and "+old.Address()+" its replica", func() bool {
		r := roles()
		return r[to.Address()] == "primary" && r[old.Address()] == "replica" && r[sb.Nodes()[1].Address()] == "replica" &&
			eval[bool](b, fmt.Sprintf(`document.querySelector('#topology tr[data-node=%q]').textContent.includes(%q)`, old.Address(), to.Address()))
	})
	t.Logf("measured: the page showed the new roles %s after the click on Confirm", shown.Round(time.Millisecond))
	if got := strings.Join(buttons(), ","); strings.Contains(got, to.Address()) || !strings.Contains(got, old.Address()) {
		t.Errorf("Make primary buttons after the switchover on %q: want the replicas %s and %s", got, old.Address(), sb.Nodes()[1].Address())
	}
	waitFor(t, time.Now(), 10*time.Second, "the switchover job open in the job list, by olga, succeeded", func() bool {
		return eval[bool](b, `[...document.querySelectorAll('#jobs details[open]')].some(d => d.textContent.includes('replication-switchover') && d.textContent.includes('by olga') && d.dataset.jobState === 'succeeded')`)
	})
	if got := b.loadedAt(); got != loaded {
		t.Fatalf("the page was reloaded (load marker %v, was %v): it must update in place", got, loaded)
	}
	b.screenshot("after-switchover")

	// A viewer sees the roles and no button (the API's refusal of a
	// viewer's job is TestConsoleFollowsKillAndRejoin's).
	b.do("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login-user")))
	eval[string](b, `document.getElementById('login-user').value = ''`)
	b.login("vic", "viewer-password-1")
	b.do("the viewer's cluster page", chromedp.Navigate(a.base+"/#/cluster/"+cluster))
	waitFor(t, time.Now(), 10*time.Second, "the viewer's page to show "+to.Address()+" primary", func() bool {
		return roles()[to.Address()] == "primary" && len(roles()) == 3
	})
	if n := eval[int](b, `document.querySelectorAll('#topology button, #start-job').length`); n != 0 {
		t.Errorf("a viewer sees %d Make primary buttons or a job form", n)
	}
	b.screenshot("viewer-after-switchover")
}
