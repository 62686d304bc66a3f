//go:build tools

// This file pins modules that packages under construction import, so that
// go mod tidy keeps them. It is removed once those packages exist.
package nines

import (
	_ "github.com/prometheus/alertmanager/api"
	_ "github.com/prometheus/alertmanager/api/v2/client"
	_ "github.com/prometheus/alertmanager/config"
	_ "github.com/prometheus/alertmanager/config/receiver"
	_ "github.com/prometheus/alertmanager/dispatch"
	_ "github.com/prometheus/alertmanager/inhibit"
	_ "github.com/prometheus/alertmanager/notify"
	_ "github.com/prometheus/alertmanager/notify/webhook"
	_ "github.com/prometheus/alertmanager/provider/mem"
	_ "github.com/prometheus/alertmanager/silence"
	_ "github.com/prometheus/alertmanager/template"
	_ "github.com/prometheus/alertmanager/timeinterval"
	_ "github.com/prometheus/prometheus/model/rulefmt"
	_ "github.com/prometheus/prometheus/promql/parser"
	_ "github.com/prometheus/prometheus/template"
)
