package ndbsim

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/ndb"
)

// transcript is one section of testdata/transcripts.txt.
type transcript struct {
	name, source    string
	cluster         Config
	before, after   []string
	shape           map[string]bool
	kind            string // transcript, derived or stream
	lines           []string
	quotes          []string
	line            int // where the section starts, for messages
	hasClusterEntry bool
}

func loadTranscripts(t *testing.T) []*transcript {
	t.Helper()
	data, err := os.ReadFile("testdata/transcripts.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out []*transcript
	var cur *transcript
	inBody := false
	for i, line := range strings.Split(string(data), "\n") {
		if name, ok := strings.CutPrefix(line, "=== "); ok {
			cur = &transcript{name: name, line: i + 1, shape: map[string]bool{}}
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
			cur.source = val
		case "quote":
			cur.quotes = append(cur.quotes, val)
		case "cluster":
			cur.hasClusterEntry = true
			for _, kv := range strings.Fields(val) {
				k, v, _ := strings.Cut(kv, "=")
				n, _ := strconv.Atoi(v)
				switch k {
				case "data":
					cur.cluster.DataNodes = n
				case "replicas":
					cur.cluster.Replicas = n
				case "sql":
					cur.cluster.SQLNodes = n
				case "host":
					cur.cluster.Host = v
				default:
					t.Fatalf("transcripts.txt:%d: unknown cluster key %q", i+1, k)
				}
			}
		case "before":
			cur.before = append(cur.before, val)
		case "after":
			cur.after = append(cur.after, val)
		case "shape":
			cur.shape[strings.Fields(val)[0]] = true
		case "transcript", "derived", "stream":
			cur.kind = strings.TrimSuffix(key, ":")
			inBody = true
		default:
			t.Fatalf("transcripts.txt:%d: unknown directive %q", i+1, line)
		}
	}
	return out
}

// annotation is the facts' commentary after a line: two or more spaces
// then "(...)", or "<-" and the rest.
var annotation = regexp.MustCompile(`(\s{2,}\(.*\)|\s*<-.*)\s*$`)

func clean(s string) string { return annotation.ReplaceAllString(s, "") }

type step struct {
	request []string // lines without the blank terminator
	reply   []string // expected lines without the blank terminator
	closes  bool     // no reply: the server closes (bye)
}

// steps turns a transcript's lines into requests and expected replies.
func steps(t *testing.T, tr *transcript) []step {
	t.Helper()
	var out []step
	var cur *step
	for _, raw := range tr.lines {
		switch {
		case raw == ">" || strings.HasPrefix(raw, "> "):
			if cur == nil || cur.reply != nil {
				out = append(out, step{})
				cur = &out[len(out)-1]
			}
			l := strings.TrimRight(clean(strings.TrimPrefix(strings.TrimPrefix(raw, ">"), " ")), " ")
			if strings.HasPrefix(l, "(") {
				continue // optional argument, not sent
			}
			if l != "" {
				cur.request = append(cur.request, l)
			}
		case raw == "<" || strings.HasPrefix(raw, "< "):
			l := strings.TrimRight(clean(strings.TrimPrefix(strings.TrimPrefix(raw, "<"), " ")), " ")
			if l != "" {
				cur.reply = append(cur.reply, l)
			} else if cur.reply == nil {
				cur.reply = []string{}
			}
		case strings.TrimSpace(raw) == "":
		default:
			t.Fatalf("%s: line %q is neither request nor reply", tr.name, raw)
		}
	}
	for i := range out {
		if out[i].reply == nil {
			out[i].closes = true
		}
	}
	return out
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

// match reports whether actual fits expected, where "..." takes any
// lines and a line starting with "<token>" any number of its shape.
func match(exp, act []string, shape map[string]bool) bool {
	if len(exp) == 0 {
		return len(act) == 0
	}
	e := exp[0]
	if e == "..." || strings.HasPrefix(e, "<token>") {
		for i := 0; i <= len(act); i++ {
			if i > 0 && e != "..." && !pattern(e, shape).MatchString(act[i-1]) {
				return false
			}
			if match(exp[1:], act[i:], shape) {
				return true
			}
		}
		return false
	}
	return len(act) > 0 && pattern(e, shape).MatchString(act[0]) && match(exp[1:], act[1:], shape)
}

// readFrame reads lines up to a blank one, trailing spaces dropped.
func readFrame(r *bufio.Reader) ([]string, error) {
	var out []string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return out, err
		}
		l = strings.TrimRight(strings.TrimSuffix(l, "\n"), " ")
		if l == "" {
			return out, nil
		}
		out = append(out, l)
	}
}

func act(t *testing.T, c *Cluster, action string) {
	t.Helper()
	f := strings.Fields(action)
	id, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("action %q: %v", action, err)
	}
	switch f[0] {
	case "down":
		err = c.SetStatus(id, ndb.StatusNoContact, 0)
	case "restart-nostart":
		_, err = c.Restart([]int{id}, StopOptions{NoStart: true})
	case "single-user":
		err = c.EnterSingleUser(id)
	case "stop":
		_, err = c.Stop([]int{id}, StopOptions{})
	default:
		t.Fatalf("unknown action %q", action)
	}
	if err != nil {
		t.Fatalf("action %q: %v", action, err)
	}
}

// TestConformance replays every transcript of the facts (part A.2, in
// testdata/transcripts.txt) against the simulator's TCP port.
func TestConformance(t *testing.T) {
	all := loadTranscripts(t)
	if len(all) < 25 {
		t.Fatalf("read %d transcripts, want the 25 of testdata/transcripts.txt", len(all))
	}
	for _, tr := range all {
		t.Run(tr.name, func(t *testing.T) {
			if tr.source == "" || !tr.hasClusterEntry || tr.kind == "" || len(tr.lines) == 0 {
				t.Fatalf("transcripts.txt:%d: section lacks source, cluster or body", tr.line)
			}
			c, err := NewCluster(tr.cluster)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range tr.before {
				act(t, c, a)
			}
			s, err := Serve(c, "127.0.0.1:0", ServerConfig{PingInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			conn, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			r := bufio.NewReader(conn)
			if tr.kind == "stream" {
				replayStream(t, tr, c, conn, r)
				return
			}
			for i, st := range steps(t, tr) {
				fmt.Fprint(conn, strings.Join(st.request, "\n")+"\n\n")
				got, err := readFrame(r)
				if st.closes {
					if err == nil || len(got) > 0 {
						t.Fatalf("step %d: want the server to close without a reply, got %q, %v", i, got, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d %q: reading reply: %v (got %q)", i, st.request[0], err, got)
				}
				if !match(st.reply, got, tr.shape) {
					t.Fatalf("step %d %q (%s):\nreply:\n  %s\nwant (facts):\n  %s", i, st.request[0], tr.source,
						strings.Join(got, "\n  "), strings.Join(st.reply, "\n  "))
				}
			}
		})
	}
}

// replayStream subscribes as a listener, applies the section's after
// actions and checks the first event frame against the facts' shape.
func replayStream(t *testing.T, tr *transcript, c *Cluster, conn net.Conn, r *bufio.Reader) {
	t.Helper()
	fmt.Fprint(conn, "listen event\nparsable: 1\nfilter: 250=15 254=15 255=15 261=15\n\n")
	if got, err := readFrame(r); err != nil || strings.Join(got, "|") != "listen event|result: 0" {
		t.Fatalf("listen reply %q, %v", got, err)
	}
	for _, a := range tr.after {
		act(t, c, a)
	}
	var want []string
	for _, l := range tr.lines {
		l = strings.TrimRight(clean(l), " ")
		if l != "" {
			want = append(want, l)
		}
	}
	got, err := readFrame(r)
	if err != nil {
		t.Fatalf("reading event: %v", err)
	}
	if !match(want, got, tr.shape) {
		t.Fatalf("event (%s):\n  %s\nwant the shape:\n  %s", tr.source, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// The matcher itself must refuse what differs, or the conformance test
// could not fail.
func TestMatchRefusesDifferences(t *testing.T) {
	exp := []string{"node status", "nodes: 4", "...", "node.100.address:"}
	if !match(exp, []string{"node status", "nodes: 4", "a", "b", "node.100.address:"}, nil) {
		t.Error("ellipsis did not match lines")
	}
	for _, act := range [][]string{
		{"node status", "nodes: 5", "node.100.address:"},
		{"node status", "nodes: 4", "node.100.address: 10.0.0.1"},
		{"node status", "nodes: 4"},
	} {
		if match(exp, act, nil) {
			t.Errorf("matched %q", act)
		}
	}
	if match([]string{"id: <N>"}, []string{"id: x"}, nil) || !match([]string{"id: <N>"}, []string{"id: 12"}, nil) {
		t.Error("numeric placeholder")
	}
	if match([]string{"restarted: 1"}, []string{"restarted: 2"}, nil) || !match([]string{"restarted: 1"}, []string{"restarted: 2"}, map[string]bool{"restarted": true}) {
		t.Error("shape keys")
	}
	if clean("> node: 2 3              (space-separated ids)") != "> node: 2 3" || clean("> (types: NDB)      <- optional") != "> (types: NDB)" {
		t.Error("annotations")
	}
}
