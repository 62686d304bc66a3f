package rules

import (
	"context"
	"net/url"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/template"
)

// templateDefs give templates the $labels, $value and $externalURL
// variables Prometheus provides, so rule files move between Prometheus and
// nines unchanged.
const templateDefs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"

// expander renders label and annotation templates of one alert.
type expander struct {
	ctx         context.Context
	ts          time.Time
	q           Querier
	externalURL *url.URL
}

// expand renders text for a series with labels ls and value v. A template
// that fails renders as its error text, as in Prometheus: a broken
// annotation must not stop the page.
func (e expander) expand(name, text string, ls map[string]string, v float64) string {
	if text == "" {
		return ""
	}
	ext := ""
	if e.externalURL != nil {
		ext = e.externalURL.String()
	}
	data := template.AlertTemplateData(ls, nil, ext, promql.Sample{Metric: labels.FromMap(ls), F: v})
	tmpl := template.NewTemplateExpander(e.ctx, templateDefs+text, name, data, model.TimeFromUnixNano(e.ts.UnixNano()), e.query, e.externalURL, nil)
	out, err := tmpl.Expand()
	if err != nil {
		return "<error expanding template: " + err.Error() + ">"
	}
	return out
}

// query lets templates run {{ query "..." }} against the store.
func (e expander) query(ctx context.Context, q string, ts time.Time) (promql.Vector, error) {
	samples, err := e.q.Query(ctx, q, ts)
	if err != nil {
		return nil, err
	}
	vec := make(promql.Vector, 0, len(samples))
	for _, s := range samples {
		vec = append(vec, promql.Sample{Metric: labels.FromMap(s.Labels), F: s.Value, T: ts.UnixMilli()})
	}
	return vec, nil
}
