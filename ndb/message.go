package ndb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The mgm protocol frames requests and replies alike [A.2.1]: a command or
// header line, zero or more `name: value` lines, then an empty line.
// Listeners' events use `name=value` lines in the same frame.

// MaxLine bounds a protocol line so a broken peer cannot grow a reader's
// buffer without end. Only get config bodies are longer, and those are
// base64 split into lines.
const MaxLine = 64 << 10

// Field is one `key: value` line.
type Field struct {
	Key, Value string
	// Sep is written between key and value; ": " when empty. Some replies
	// differ: `nodeid:50` in get mgmd nodeid, `type=28` in events.
	Sep string
}

// Message is one framed request or reply.
type Message struct {
	Header string
	Fields []Field
}

// Get returns the value of the first field named key.
func (m Message) Get(key string) (string, bool) {
	for _, f := range m.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

// Add appends a field and returns the message, for building.
func (m *Message) Add(key, value string) *Message {
	m.Fields = append(m.Fields, Field{Key: key, Value: value})
	return m
}

// Bytes is the message on the wire, ending with its empty line.
func (m Message) Bytes() []byte {
	var b strings.Builder
	b.WriteString(m.Header)
	b.WriteByte('\n')
	for _, f := range m.Fields {
		sep := f.Sep
		if sep == "" {
			sep = ": "
		}
		b.WriteString(f.Key)
		b.WriteString(sep)
		b.WriteString(f.Value)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return []byte(b.String())
}

// WriteTo writes the message in one write, so concurrent writers to a
// stream (events and pings) never interleave inside a message when the
// caller serialises WriteTo calls.
func (m Message) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(m.Bytes())
	return int64(n), err
}

// ParseError names the line of a message that could not be read and why.
type ParseError struct {
	Line int    // 1-based within the message; 0 when the message is unnamed
	Text string // the offending line, or the field
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("mgm protocol: %s: %q", e.Msg, e.Text)
	}
	return fmt.Sprintf("mgm protocol line %d %q: %s", e.Line, e.Text, e.Msg)
}

// ErrEmpty is returned when a frame starts with an empty line.
var ErrEmpty = errors.New("mgm protocol: empty line where a header was expected")

// ReadLine reads one line without its newline (a trailing \r is dropped).
func ReadLine(r *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			if err == io.EOF && len(b) > 0 {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > MaxLine {
			return "", &ParseError{Text: string(b[:40]) + "...", Msg: fmt.Sprintf("line longer than %d bytes", MaxLine)}
		}
		if !isPrefix {
			return strings.TrimSuffix(string(b), "\r"), nil
		}
	}
}

// ReadMessage reads one frame whose field lines use sep (":" for requests
// and replies, "=" for events). Values are split at the first sep and
// trimmed, as ndb_mgmd and Oracle's Go client do [OPER]. A line without
// sep is an error naming it. EOF before the header gives io.EOF; EOF
// inside the frame gives io.ErrUnexpectedEOF.
func ReadMessage(r *bufio.Reader, sep string) (Message, error) {
	header, err := ReadLine(r)
	if err != nil {
		return Message{}, err
	}
	if header == "" {
		return Message{}, ErrEmpty
	}
	m := Message{Header: header}
	for n := 2; ; n++ {
		line, err := ReadLine(r)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return m, fmt.Errorf("reading %q: %w", header, err)
		}
		if line == "" {
			return m, nil
		}
		k, v, ok := strings.Cut(line, sep)
		if !ok {
			return m, &ParseError{Line: n, Text: line, Msg: fmt.Sprintf("no %q between name and value", sep)}
		}
		k = strings.TrimSpace(k)
		if k == "" {
			return m, &ParseError{Line: n, Text: line, Msg: "empty name"}
		}
		m.Fields = append(m.Fields, Field{Key: k, Value: strings.TrimSpace(v), Sep: fieldSep(sep, v)})
	}
}

// fieldSep keeps how the line separated its value, so a message read and
// written again is byte-identical where it matters (nodeid:50).
func fieldSep(sep, value string) string {
	switch {
	case sep == "=":
		return "="
	case !strings.HasPrefix(value, " "):
		return ":"
	}
	return ""
}
