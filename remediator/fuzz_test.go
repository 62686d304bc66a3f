package remediator

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// FuzzWebhook feeds Alertmanager webhook bodies, as any holder of a
// webhook token could post them, through the decoder the API uses and
// into Receive: nothing may panic, no more jobs start than alerts came,
// and the same notification sent twice never starts a job twice.
func FuzzWebhook(f *testing.F) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for _, msg := range []WebhookMessage{
		alert("fp1", "c1", "rb", at),
		alert("", "c1", "rb", at),
		alert("fp2", "c1", "no-such-runbook", at),
		alert("fp3", "other", "rb", at),
		{Alerts: []WebhookAlert{{Status: "resolved", Fingerprint: "fp1", Labels: map[string]string{"cluster": "c1", "remediation": "rb"}}}},
	} {
		b, _ := json.Marshal(msg)
		f.Add(b)
	}
	f.Add([]byte(`{"alerts":[{"status":"firing","labels":{"cluster":"c1","remediation":"rb","instance":"../../etc"}}]}`))
	f.Add([]byte(`{"alerts":null}`))
	f.Add([]byte(`{"alerts":[{}]}`))

	rb := &countingRunbook{name: "rb"}
	r, _, _ := newTest(f, Policy{Mode: ModeAuto}, rb)
	f.Fuzz(func(t *testing.T, body []byte) {
		var msg WebhookMessage
		if json.Unmarshal(body, &msg) != nil {
			return
		}
		n := r.Receive(msg)
		if n < 0 || n > len(msg.Alerts) {
			t.Fatalf("%d alerts accepted of %d", n, len(msg.Alerts))
		}
		resolves := false
		for _, a := range msg.Alerts {
			resolves = resolves || a.Status == "resolved"
		}
		if again := r.Receive(msg); again != 0 && !resolves {
			t.Fatalf("the same notification accepted again: %d alerts", again)
		}
	})
}

// FuzzManualRequest feeds job requests, as the API decodes them, to
// Start: a request either fails with an error or gives a job of the
// cluster and runbook it asked for; nothing panics.
func FuzzManualRequest(f *testing.F) {
	for _, req := range []ManualRequest{
		{Cluster: "c1", Runbook: "rb"},
		{Cluster: "c1", Runbook: "rb", DryRun: true, Target: "n1"},
		{Cluster: "c1", Kind: "rejoin", Target: "n2", Force: "n1"},
		{Cluster: "nosuch", Runbook: "rb"},
		{Cluster: "c1", Runbook: "rb", Params: map[string]string{"dir": "/../../etc"}, Method: "dump", BackupID: "x"},
	} {
		b, _ := json.Marshal(req)
		f.Add(b)
	}
	rb := &countingRunbook{name: "rb"}
	r, _, _ := newTest(f, Policy{Mode: ModeAuto}, rb)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req ManualRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		j, err := r.Start(ctx, req)
		if err != nil {
			return
		}
		if j.Cluster != req.Cluster || j.Runbook != "rb" {
			t.Fatalf("request %+v gave job of %s running %s", req, j.Cluster, j.Runbook)
		}
	})
}
