package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Names of the dashboard variables.
const (
	varDatasource = "datasource"
	varCluster    = "cluster"
	varInstance   = "instance"
)

// datasource is the reference every panel, query and variable uses: the
// datasource variable, whose default is the data source provisioning
// creates.
func datasource() common.DataSourceRef {
	typ, uid := "prometheus", "${"+varDatasource+"}"
	return common.DataSourceRef{Type: &typ, Uid: &uid}
}

// build translates s into the SDK's dashboard model.
func (s Spec) build(o Options) (dashboard.Dashboard, error) {
	b := dashboard.NewDashboardBuilder(s.Title).
		Uid(s.UID).
		Description(s.Description).
		Tags([]string{"nines"}).
		Editable().
		Refresh("10s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Variables(variables(o)).
		Annotation(dashboard.NewAnnotationQueryBuilder().
			Name(AnnotationName).
			Datasource(datasource()).
			Enable(true).
			IconColor("orange").
			Expr(Annotation.Expr).
			TitleFormat(Annotation.Legend).
			Step(annotationStep))
	row := ""
	for i, p := range s.Panels {
		if p.Row != "" && p.Row != row {
			b.WithRow(dashboard.NewRowBuilder(p.Row))
			row = p.Row
		}
		pb, err := p.builder()
		if err != nil {
			return dashboard.Dashboard{}, fmt.Errorf("dashboard %s, panel %d %q: %w", s.UID, i+1, p.Title, err)
		}
		b.WithPanel(pb)
	}
	d, err := b.Build()
	if err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("dashboard %s: %w", s.UID, err)
	}
	return d, nil
}

// variables are the same on every dashboard: the data source, then
// cluster and instance, each instance list following the clusters chosen.
func variables(o Options) []cog.Builder[dashboard.VariableModel] {
	current := func(text, value string) dashboard.VariableOption {
		return dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: &text}, Value: dashboard.StringOrArrayOfString{String: &value}}
	}
	query := func(q string) dashboard.StringOrMap { return dashboard.StringOrMap{String: &q} }
	clusterQ := `label_values(nines_cluster_info, cluster)`
	instanceQ := `label_values(mysql_up{cluster=~"$cluster"}, instance)`
	cluster := dashboard.NewQueryVariableBuilder(varCluster).
		Label("Cluster").
		Datasource(datasource()).
		Query(query(clusterQ)).
		Definition(clusterQ).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".*")
	if o.Cluster != "" {
		cluster.Current(current(o.Cluster, o.Cluster))
	} else {
		cluster.Current(current("All", "$__all"))
	}
	return []cog.Builder[dashboard.VariableModel]{
		dashboard.NewDatasourceVariableBuilder(varDatasource).
			Label("Data source").
			Type("prometheus").
			Current(current(DatasourceName, DatasourceUID)),
		cluster,
		dashboard.NewQueryVariableBuilder(varInstance).
			Label("Instance").
			Datasource(datasource()).
			Query(query(instanceQ)).
			Definition(instanceQ).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).
			IncludeAll(true).
			AllValue(".*").
			Current(current("All", "$__all")),
	}
}

// common is what the SDK's panel builders of every type share and what
// nines sets on each.
type commonBuilder[B any] interface {
	cog.Builder[dashboard.Panel]
	Title(string) B
	Description(string) B
	Datasource(common.DataSourceRef) B
	WithTarget(cog.Builder[variants.Dataquery]) B
	Unit(string) B
	Min(float64) B
	Max(float64) B
	Thresholds(cog.Builder[dashboard.ThresholdsConfig]) B
	Mappings([]dashboard.ValueMapping) B
	Span(uint32) B
	Height(uint32) B
}

func apply[B any](b commonBuilder[B], p Panel) cog.Builder[dashboard.Panel] {
	b.Title(p.Title)
	if p.Description != "" {
		b.Description(p.Description)
	}
	b.Datasource(datasource())
	b.Unit(p.Unit)
	if p.Min != nil {
		b.Min(*p.Min)
	}
	if p.Max != nil {
		b.Max(*p.Max)
	}
	b.Thresholds(thresholds(p.Steps))
	if len(p.Mappings) > 0 {
		b.Mappings(mappings(p.Mappings))
	}
	w, h := p.Width, p.Height
	if w == 0 {
		w = 8
	}
	if h == 0 {
		h = 6
	}
	b.Span(w)
	b.Height(h)
	for i, t := range p.Targets {
		q := prometheus.NewDataqueryBuilder().
			Datasource(datasource()).
			RefId(string(rune('A' + i))).
			Expr(t.Expr).
			LegendFormat(t.Legend)
		if t.Instant {
			q.Instant().Format(prometheus.PromQueryFormatTable)
		} else {
			q.Range()
		}
		b.WithTarget(q)
	}
	return b
}

// builder returns the SDK builder of the panel's type.
func (p Panel) builder() (cog.Builder[dashboard.Panel], error) {
	if p.Unit == "" {
		return nil, fmt.Errorf("no unit")
	}
	if len(p.Targets) == 0 {
		return nil, fmt.Errorf("no query")
	}
	switch p.Type {
	case TimeSeries:
		b := timeseries.NewPanelBuilder().
			LineWidth(1).
			FillOpacity(10).
			ShowPoints(common.VisibilityModeNever).
			Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)).
			Legend(common.NewVizLegendOptionsBuilder().
				ShowLegend(true).
				DisplayMode(common.LegendDisplayModeList).
				Placement(common.LegendPlacementBottom))
		if len(p.Steps) > 1 {
			b.ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))
		}
		if p.Stacked {
			b.Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))
		}
		return apply[*timeseries.PanelBuilder](b, p), nil
	case Stat:
		if p.Height == 0 {
			p.Height = 4 // one line of numbers needs less than a graph
		}
		b := stat.NewPanelBuilder().
			ColorMode(common.BigValueColorModeBackground).
			GraphMode(common.BigValueGraphModeNone).
			TextMode(common.BigValueTextModeAuto).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false))
		if p.FailureOnly {
			b.NoValue("none")
		}
		return apply[*stat.PanelBuilder](b, p), nil
	case Table:
		b := table.NewPanelBuilder()
		if p.FailureOnly {
			b.NoValue("none")
		}
		return apply[*table.PanelBuilder](b, p), nil
	case StateTimeline:
		b := statetimeline.NewPanelBuilder().
			Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeSingle).Sort(common.SortOrderNone)).
			ShowValue(common.VisibilityModeAuto).
			MergeValues(true).
			FillOpacity(80)
		return apply[*statetimeline.PanelBuilder](b, p), nil
	}
	return nil, fmt.Errorf("unknown panel type %q", p.Type)
}

func thresholds(ss []Step) cog.Builder[dashboard.ThresholdsConfig] {
	if len(ss) == 0 {
		ss = []Step{{Color: "green"}}
	}
	out := make([]dashboard.Threshold, len(ss))
	for i, s := range ss {
		out[i] = dashboard.Threshold{Value: s.Value, Color: s.Color}
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(out)
}

func mappings(ms []Mapping) []dashboard.ValueMapping {
	vm := dashboard.NewValueMap()
	for i, m := range ms {
		text, color, idx := m.Text, m.Color, int32(i)
		vm.Options[m.Value] = dashboard.ValueMappingResult{Text: &text, Color: &color, Index: &idx}
	}
	return []dashboard.ValueMapping{{ValueMap: vm}}
}
