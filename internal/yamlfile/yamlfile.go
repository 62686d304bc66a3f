// Package yamlfile decodes YAML files strictly and reports every problem
// with its file, line and dotted field path, so an operator can fix a
// config in one pass.
package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldError is one problem in a config file.
type FieldError struct {
	File  string
	Line  int    // 0 when the line is not known
	Field string // dotted path such as clusters[0].nodes[1].address
	Msg   string
}

func (e FieldError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return loc + ": " + e.Msg
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
}

// Errors is every problem Load found, in file order.
type Errors struct {
	File string
	List []FieldError
}

func (e *Errors) Error() string {
	msgs := make([]string, len(e.List))
	for i, fe := range e.List {
		msgs[i] = fe.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap exposes each FieldError to errors.As.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.List))
	for i, fe := range e.List {
		out[i] = fe
	}
	return out
}

// Add records a problem at line (0 when unknown) of field.
func (e *Errors) Add(line int, field, msg string) { e.add(line, field, msg) }

// Err returns e, or nil when it holds no problem.
func (e *Errors) Err() error {
	if len(e.List) == 0 {
		return nil
	}
	return e
}

func (e *Errors) add(line int, field, msg string) {
	e.List = append(e.List, FieldError{File: e.File, Line: line, Field: field, Msg: msg})
	sort.SliceStable(e.List, func(i, j int) bool { return e.List[i].Line < e.List[j].Line })
}

var yamlLineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
var unknownFieldRe = regexp.MustCompile(`^field (\S+) not found in type \S+$`)

// addYAML turns the YAML library's errors, which carry the line only in
// their text, into FieldErrors. idx (may be nil) names the field at a line.
func (e *Errors) addYAML(err error, idx lineIndex) {
	if errors.Is(err, io.EOF) {
		e.add(0, "", "file is empty")
		return
	}
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	for _, m := range msgs {
		line, field := 0, ""
		if sm := yamlLineRe.FindStringSubmatch(m); sm != nil {
			line, _ = strconv.Atoi(sm[1])
			m = sm[2]
		}
		if sm := unknownFieldRe.FindStringSubmatch(m); sm != nil {
			m = fmt.Sprintf("unknown field %q", sm[1])
			field = idx.keyAt(line, sm[1])
		} else {
			field = idx.valueAt(line)
		}
		e.add(line, field, m)
	}
}

// Decode strictly decodes the YAML document b (named file in errors) into
// v: unknown fields are errors. It returns the line of every field path,
// for the caller's own checks, and the problems found; a document that
// does not parse yields no lines.
func Decode(file string, b []byte, v any) (Lines, *Errors) {
	errs := &Errors{File: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		errs.addYAML(err, nil)
		return Lines{}, errs
	}
	idx := indexLines(&doc)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		errs.addYAML(err, idx)
	}
	return Lines{idx}, errs
}

// Lines tells on which line of a decoded file a field is.
type Lines struct{ idx lineIndex }

// Line returns the line of a dotted field path such as
// clusters[0].nodes[1].address, or of its nearest ancestor in the file.
func (l Lines) Line(path string) int { return l.idx.line(path) }

// lineIndex maps field paths to the line their value is on.
type lineIndex map[string]int

func indexLines(doc *yaml.Node) lineIndex {
	idx := lineIndex{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				idx[p] = k.Line
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				idx[p] = c.Line
				walk(c, p)
			}
		case yaml.AliasNode:
			// Never follow an alias: one that refers to its own anchor
			// (a: &a {b: *a}) would recurse forever, and many aliases of
			// one big anchor (billion laughs) would index it exponentially
			// often. Fields reached through an alias report the alias's line.
		}
	}
	walk(doc, "")
	return idx
}

// line returns the line of path, or of its nearest ancestor that appears
// in the file (a missing field is reported where its parent is).
func (idx lineIndex) line(path string) int {
	for p := path; p != ""; {
		if l, ok := idx[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// keyAt finds the path of key at line.
func (idx lineIndex) keyAt(line int, key string) string {
	for p, l := range idx {
		if l == line && (p == key || strings.HasSuffix(p, "."+key)) {
			return p
		}
	}
	return key
}

// valueAt names the deepest field on line, for errors that only give a line.
func (idx lineIndex) valueAt(line int) string {
	best := ""
	for p, l := range idx {
		if l == line && len(p) > len(best) {
			best = p
		}
	}
	return best
}

// UnwrapPathErr drops the path an *os.PathError repeats, for messages
// that already name the file.
func UnwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
