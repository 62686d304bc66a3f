// Package metric is the exporters' common currency: a flat sample with its
// name, labels and Prometheus type. The same values feed both the
// /metrics endpoint and the embedded store, so what an operator scrapes and
// what the store holds never disagree.
package metric

// Type is the Prometheus metric type of a sample.
type Type int

const (
	Untyped Type = iota
	Gauge
	Counter
)

// Label is one name/value pair.
type Label struct {
	Name, Value string
}

// Metric is one sample. Labels exclude the metric name; they are in the
// order they were added, and a name appears at most once.
type Metric struct {
	Name   string
	Help   string
	Type   Type
	Labels []Label
	Value  float64
}

// Set collects metrics that share a set of constant labels (cluster,
// instance). The zero value has no constant labels.
type Set struct {
	Const   []Label
	Metrics []Metric
}

// Add appends a sample. labels alternate name, value; an odd count drops
// the last element, which only a programming error can cause.
func (s *Set) Add(name, help string, typ Type, value float64, labels ...string) {
	ls := make([]Label, 0, len(s.Const)+len(labels)/2)
	ls = append(ls, s.Const...)
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, Label{Name: labels[i], Value: labels[i+1]})
	}
	s.Metrics = append(s.Metrics, Metric{Name: name, Help: help, Type: typ, Labels: ls, Value: value})
}
