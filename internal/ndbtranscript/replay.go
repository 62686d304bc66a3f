// Package ndbtranscript replays the facts' management server transcripts
// (part A.2, copied into transcripts.txt) against anything that serves
// the mgm protocol on a TCP port: the in-process simulator
// (sandbox/ndbsim) and the mgmd of a `nines sandbox ndb` run as real
// processes (sandbox). Tests only; the transcripts are embedded so each
// caller reads the same copy.
package ndbtranscript

import (
	"bufio"
	_ "embed"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

//go:embed transcripts.txt
var transcripts string

// Shape is the cluster a transcript was written against ("cluster:").
type Shape struct {
	DataNodes, Replicas, SQLNodes int
	// Host is the address the nodes report, "" for the target's own.
	Host string
}

// Action is a change of cluster state a transcript needs before it is
// replayed ("before:") or whose event it reads ("after:"): Verb is down
// (the node's process gone), stop (STOP), restart-nostart (RESTART -n)
// or single-user (ENTER SINGLE USER MODE for API node Node).
type Action struct {
	Verb string
	Node int
}

func (a Action) String() string { return a.Verb + " " + strconv.Itoa(a.Node) }

// Transcript is one section of transcripts.txt.
type Transcript struct {
	Name, Source string
	Cluster      Shape
	Before       []Action
	After        []Action
	// Kind is transcript (verbatim from the facts), derived (built from
	// a quoted sentence) or stream (an event frame read after After).
	Kind string
	Line int // where the section starts in transcripts.txt

	shape           map[string]bool
	lines           []string
	quotes          []string
	hasClusterEntry bool
}

// Load parses the embedded transcripts.txt. Every section must carry a
// source, a cluster and a body.
func Load() ([]*Transcript, error) {
	var out []*Transcript
	var cur *Transcript
	inBody := false
	for i, line := range strings.Split(transcripts, "\n") {
		if name, ok := strings.CutPrefix(line, "=== "); ok {
			cur = &Transcript{Name: name, Line: i + 1, shape: map[string]bool{}}
			out = append(out, cur)
			inBody = false
			continue
		}
		if cur == nil {
			continue // the file's header comment
		}
		if inBody {
			cur.lines = append(cur.lines, line)
			continue
		}
		key, val, _ := strings.Cut(line, ": ")
		switch strings.TrimSuffix(key, ":") {
		case "source":
			cur.Source = val
		case "quote":
			cur.quotes = append(cur.quotes, val)
		case "cluster":
			cur.hasClusterEntry = true
			for _, kv := range strings.Fields(val) {
				k, v, _ := strings.Cut(kv, "=")
				n, _ := strconv.Atoi(v)
				switch k {
				case "data":
					cur.Cluster.DataNodes = n
				case "replicas":
					cur.Cluster.Replicas = n
				case "sql":
					cur.Cluster.SQLNodes = n
				case "host":
					cur.Cluster.Host = v
				default:
					return nil, fmt.Errorf("transcripts.txt:%d: unknown cluster key %q", i+1, k)
				}
			}
		case "before", "after":
			f := strings.Fields(val)
			n := 0
			if len(f) == 2 {
				n, _ = strconv.Atoi(f[1])
			}
			if len(f) != 2 || n == 0 {
				return nil, fmt.Errorf("transcripts.txt:%d: want %q <node id>", i+1, key)
			}
			a := Action{Verb: f[0], Node: n}
			if key == "before" {
				cur.Before = append(cur.Before, a)
			} else {
				cur.After = append(cur.After, a)
			}
		case "shape":
			cur.shape[strings.Fields(val)[0]] = true
		case "transcript", "derived", "stream":
			cur.Kind = strings.TrimSuffix(key, ":")
			inBody = true
		default:
			return nil, fmt.Errorf("transcripts.txt:%d: unknown directive %q", i+1, line)
		}
	}
	for _, tr := range out {
		if tr.Source == "" || !tr.hasClusterEntry || tr.Kind == "" || len(tr.lines) == 0 {
			return nil, fmt.Errorf("transcripts.txt:%d: section %q lacks source, cluster or body", tr.Line, tr.Name)
		}
	}
	return out, nil
}

// annotation is the facts' commentary after a line: two or more spaces
// then "(...)", or "<-" and the rest.
var annotation = regexp.MustCompile(`(\s{2,}\(.*\)|\s*<-.*)\s*$`)

// Clean drops the facts' annotation from a transcript line.
func Clean(s string) string { return annotation.ReplaceAllString(s, "") }

// Step is one request and the reply the facts give for it.
type Step struct {
	Request []string // lines without the blank terminator
	Reply   []string // expected lines without the blank terminator
	Closes  bool     // no reply: the server closes (bye)
}

// Steps turns a transcript's lines into requests and expected replies.
func (tr *Transcript) Steps() ([]Step, error) {
	var out []Step
	var cur *Step
	for _, raw := range tr.lines {
		switch {
		case raw == ">" || strings.HasPrefix(raw, "> "):
			if cur == nil || cur.Reply != nil {
				out = append(out, Step{})
				cur = &out[len(out)-1]
			}
			l := strings.TrimRight(Clean(strings.TrimPrefix(strings.TrimPrefix(raw, ">"), " ")), " ")
			if strings.HasPrefix(l, "(") {
				continue // optional argument, not sent
			}
			if l != "" {
				cur.Request = append(cur.Request, l)
			}
		case raw == "<" || strings.HasPrefix(raw, "< "):
			if cur == nil {
				return nil, fmt.Errorf("%s: reply line %q before any request", tr.Name, raw)
			}
			l := strings.TrimRight(Clean(strings.TrimPrefix(strings.TrimPrefix(raw, "<"), " ")), " ")
			if l != "" {
				cur.Reply = append(cur.Reply, l)
			} else if cur.Reply == nil {
				cur.Reply = []string{}
			}
		case strings.TrimSpace(raw) == "":
		default:
			return nil, fmt.Errorf("%s: line %q is neither request nor reply", tr.Name, raw)
		}
	}
	for i := range out {
		if out[i].Reply == nil {
			out[i].Closes = true
		}
	}
	return out, nil
}

var placeholder = regexp.MustCompile(`<[^<>]+>`)

// pattern turns an expected line into a regexp: placeholders match by
// shape, numbers under shape keys match any number, the rest literally.
func pattern(line string, shape map[string]bool) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, loc := range placeholder.FindAllStringIndex(line, -1) {
		b.WriteString(regexp.QuoteMeta(line[last:loc[0]]))
		ph := line[loc[0]:loc[1]]
		switch {
		case ph == "<token>":
			b.WriteString(`[a-z_0-9]+`)
		case ph == "<N>" || ph == "<int>" || ph == "<node>" || strings.Contains(ph, "number"):
			b.WriteString(`-?\d+`)
		default:
			b.WriteString(`.+`)
		}
		last = loc[1]
	}
	rest := line[last:]
	if k, _, ok := strings.Cut(rest, ": "); ok && shape[k] && last == 0 {
		b.WriteString(regexp.QuoteMeta(k + ": "))
		b.WriteString(`\d+`)
	} else {
		b.WriteString(regexp.QuoteMeta(rest))
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// Match reports whether actual fits expected, where "..." takes any
// lines and a line starting with "<token>" any number of its shape;
// shape names keys whose values compare as numbers only.
func Match(exp, act []string, shape map[string]bool) bool {
	if len(exp) == 0 {
		return len(act) == 0
	}
	e := exp[0]
	if e == "..." || strings.HasPrefix(e, "<token>") {
		for i := 0; i <= len(act); i++ {
			if i > 0 && e != "..." && !pattern(e, shape).MatchString(act[i-1]) {
				return false
			}
			if Match(exp[1:], act[i:], shape) {
				return true
			}
		}
		return false
	}
	return len(act) > 0 && pattern(e, shape).MatchString(act[0]) && Match(exp[1:], act[1:], shape)
}

// ReadFrame reads lines up to a blank one, trailing spaces dropped. With
// skipPings it drops the `<PING>` keep-alive lines of an event stream
// [facts A.2.3 listen event], which may come between events.
func ReadFrame(r *bufio.Reader, skipPings bool) ([]string, error) {
	var out []string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return out, err
		}
		l = strings.TrimRight(strings.TrimSuffix(l, "\n"), " ")
		if skipPings && l == "<PING>" {
			continue
		}
		if l == "" {
			return out, nil
		}
		out = append(out, l)
	}
}

// Target is a management server to replay against.
type Target struct {
	Addr string // host:port of its mgm protocol
	// Host is the address its nodes report. When set and the
	// transcript's cluster names another, that address is expected as
	// Host instead: it is the cluster's configuration, not protocol.
	Host string
	// Act brings the cluster into the state an Action names and returns
	// once it is there (nil: transcripts with actions fail).
	Act func(Action) error
	// Timeout bounds each reply; default 5 s.
	Timeout time.Duration
}

// Replay runs tr's before actions, then its requests over one
// connection to tg, checking each reply against the facts; a stream
// section subscribes, runs the after actions and checks the first event.
func Replay(t testing.TB, tr *Transcript, tg Target) {
	t.Helper()
	if tg.Timeout == 0 {
		tg.Timeout = 5 * time.Second
	}
	act := func(a Action) {
		t.Helper()
		if tg.Act == nil {
			t.Fatalf("%s needs %q and the target cannot act", tr.Name, a)
		}
		if err := tg.Act(a); err != nil {
			t.Fatalf("action %q: %v", a, err)
		}
	}
	for _, a := range tr.Before {
		act(a)
	}
	conn, err := net.DialTimeout("tcp", tg.Addr, tg.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	host := func(lines []string) []string {
		if tg.Host == "" || tr.Cluster.Host == "" || tg.Host == tr.Cluster.Host {
			return lines
		}
		out := make([]string, len(lines))
		for i, l := range lines {
			out[i] = strings.ReplaceAll(l, tr.Cluster.Host, tg.Host)
		}
		return out
	}
	if tr.Kind == "stream" {
		conn.SetDeadline(time.Now().Add(tg.Timeout))
		fmt.Fprint(conn, "listen event\nparsable: 1\nfilter: 250=15 254=15 255=15 261=15\n\n")
		if got, err := ReadFrame(r, false); err != nil || strings.Join(got, "|") != "listen event|result: 0" {
			t.Fatalf("listen reply %q, %v", got, err)
		}
		for _, a := range tr.After {
			act(a)
		}
		var want []string
		for _, l := range tr.lines {
			l = strings.TrimRight(Clean(l), " ")
			if l != "" {
				want = append(want, l)
			}
		}
		conn.SetDeadline(time.Now().Add(tg.Timeout))
		got, err := ReadFrame(r, true)
		if err != nil {
			t.Fatalf("reading event: %v", err)
		}
		if !Match(want, got, tr.shape) {
			t.Fatalf("event (%s):\n  %s\nwant the shape:\n  %s", tr.Source, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		return
	}
	steps, err := tr.Steps()
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range steps {
		conn.SetDeadline(time.Now().Add(tg.Timeout))
		fmt.Fprint(conn, strings.Join(st.Request, "\n")+"\n\n")
		got, err := ReadFrame(r, false)
		if st.Closes {
			if err == nil || len(got) > 0 {
				t.Fatalf("step %d: want the server to close without a reply, got %q, %v", i, got, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d %q: reading reply: %v (got %q)", i, st.Request[0], err, got)
		}
		if want := host(st.Reply); !Match(want, got, tr.shape) {
			t.Fatalf("step %d %q (%s):\nreply:\n  %s\nwant (facts):\n  %s", i, st.Request[0], tr.Source,
				strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
}
