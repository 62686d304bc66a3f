package fleetsim

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The MySQL client/server protocol, as much of it as the scraper and
// go-sql-driver/mysql use: the v10 handshake with mysql_native_password,
// COM_QUERY answered by text result sets (with EOF packets: the greeting
// does not offer CLIENT_DEPRECATE_EOF), OK and ERR packets, COM_PING,
// COM_INIT_DB and COM_QUIT. Sources: the MySQL internals manual's
// "Client/Server Protocol" chapter (packets, HandshakeV10,
// HandshakeResponse41, Text Resultset, ColumnDefinition41).

// Capability flags offered in the greeting.
const (
	capLongPassword     = 0x00000001
	capFoundRows        = 0x00000002
	capLongFlag         = 0x00000004
	capConnectWithDB    = 0x00000008
	capProtocol41       = 0x00000200
	capTransactions     = 0x00002000
	capSecureConn       = 0x00008000
	capMultiResults     = 0x00020000
	capPluginAuth       = 0x00080000
	capConnectAttrs     = 0x00100000
	capPluginAuthLenenc = 0x00200000

	serverCaps = capLongPassword | capFoundRows | capLongFlag | capConnectWithDB | capProtocol41 |
		capTransactions | capSecureConn | capMultiResults | capPluginAuth | capConnectAttrs | capPluginAuthLenenc
)

// Commands (the first byte of a command packet).
const (
	comQuit   = 0x01
	comInitDB = 0x02
	comQuery  = 0x03
	comPing   = 0x0e
)

const (
	statusAutocommit = 0x0002
	charsetUTF8MB4   = 45 // utf8mb4_general_ci
	typeVarString    = 0xfd
	nativePassword   = "mysql_native_password"
	maxPacket        = 1<<24 - 1
)

// conn frames packets on one client connection.
type conn struct {
	r   *bufio.Reader
	w   *bufio.Writer
	seq byte
}

// readPacket returns the next packet's payload (packets of 16 MiB - 1
// bytes are continued by the next; no query here is that long).
func (c *conn) readPacket() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(uint32(hdr[0]) | uint32(hdr[1])<<8 | uint32(hdr[2])<<16)
	if n == maxPacket {
		return nil, errors.New("packet of 16 MiB or more: not simulated")
	}
	c.seq = hdr[3] + 1
	p := make([]byte, n)
	_, err := io.ReadFull(c.r, p)
	return p, err
}

// writePacket buffers one packet with the next sequence id; flush sends.
func (c *conn) writePacket(p []byte) {
	n := len(p)
	c.w.Write([]byte{byte(n), byte(n >> 8), byte(n >> 16), c.seq})
	c.w.Write(p)
	c.seq++
}

func (c *conn) flush() error { return c.w.Flush() }

func (c *conn) writeOK() error {
	c.writePacket([]byte{0x00, 0, 0, statusAutocommit, 0, 0, 0})
	return c.flush()
}

func (c *conn) writeErr(code uint16, state, msg string) error {
	p := []byte{0xff, byte(code), byte(code >> 8), '#'}
	p = append(p, state[:5]...)
	p = append(p, msg...)
	c.writePacket(p)
	return c.flush()
}

func eofPacket() []byte { return []byte{0xfe, 0, 0, statusAutocommit, 0} }

// greeting is the server's HandshakeV10 with a 20-byte scramble.
func greeting(version string, connID uint32, scramble []byte) []byte {
	var b bytes.Buffer
	b.WriteByte(10)
	b.WriteString(version)
	b.WriteByte(0)
	binary.Write(&b, binary.LittleEndian, connID)
	b.Write(scramble[:8])
	b.WriteByte(0)
	binary.Write(&b, binary.LittleEndian, uint16(serverCaps&0xffff))
	b.WriteByte(charsetUTF8MB4)
	binary.Write(&b, binary.LittleEndian, uint16(statusAutocommit))
	binary.Write(&b, binary.LittleEndian, uint16(serverCaps>>16))
	b.WriteByte(byte(len(scramble) + 1))
	b.Write(make([]byte, 10))
	b.Write(scramble[8:])
	b.WriteByte(0)
	b.WriteString(nativePassword)
	b.WriteByte(0)
	return b.Bytes()
}

// handshakeResponse is what the client answers to the greeting.
type handshakeResponse struct {
	user   string
	auth   []byte
	plugin string
}

func parseHandshakeResponse(p []byte) (handshakeResponse, error) {
	var h handshakeResponse
	if len(p) < 32 {
		return h, errors.New("handshake response too short")
	}
	caps := binary.LittleEndian.Uint32(p)
	if caps&capProtocol41 == 0 {
		return h, errors.New("client without CLIENT_PROTOCOL_41: not simulated")
	}
	rest := p[32:]
	user, rest, ok := cutNul(rest)
	if !ok {
		return h, errors.New("handshake response: no user")
	}
	h.user = user
	switch {
	case caps&capPluginAuthLenenc != 0:
		n, w := lenencInt(rest)
		if w == 0 || int(n) > len(rest)-w {
			return h, errors.New("handshake response: bad auth length")
		}
		h.auth, rest = rest[w:w+int(n)], rest[w+int(n):]
	case caps&capSecureConn != 0:
		if len(rest) < 1 || int(rest[0]) > len(rest)-1 {
			return h, errors.New("handshake response: bad auth length")
		}
		n := int(rest[0])
		h.auth, rest = rest[1:1+n], rest[1+n:]
	default:
		var a string
		a, rest, _ = cutNul(rest)
		h.auth = []byte(a)
	}
	if caps&capConnectWithDB != 0 {
		_, rest, _ = cutNul(rest)
	}
	if caps&capPluginAuth != 0 {
		h.plugin, _, _ = cutNul(rest)
	}
	return h, nil
}

// nativeAuthOK checks a mysql_native_password answer:
// SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
func nativeAuthOK(answer, scramble []byte, password string) bool {
	if password == "" {
		return len(answer) == 0
	}
	if len(answer) != sha1.Size {
		return false
	}
	s1 := sha1.Sum([]byte(password))
	s2 := sha1.Sum(s1[:])
	h := sha1.New()
	h.Write(scramble)
	h.Write(s2[:])
	s3 := h.Sum(nil)
	for i := range s1 {
		if answer[i] != s1[i]^s3[i] {
			return false
		}
	}
	return true
}

func cutNul(b []byte) (string, []byte, bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return string(b), nil, false
	}
	return string(b[:i]), b[i+1:], true
}

// lenencInt decodes a length-encoded integer; w is its width, 0 if bad.
func lenencInt(b []byte) (n uint64, w int) {
	if len(b) == 0 {
		return 0, 0
	}
	switch b[0] {
	case 0xfc:
		if len(b) < 3 {
			return 0, 0
		}
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3
	case 0xfd:
		if len(b) < 4 {
			return 0, 0
		}
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4
	case 0xfe:
		if len(b) < 9 {
			return 0, 0
		}
		return binary.LittleEndian.Uint64(b[1:]), 9
	case 0xfb, 0xff:
		return 0, 0
	}
	return uint64(b[0]), 1
}

func appendLenencInt(b []byte, n uint64) []byte {
	switch {
	case n < 251:
		return append(b, byte(n))
	case n < 1<<16:
		return append(b, 0xfc, byte(n), byte(n>>8))
	case n < 1<<24:
		return append(b, 0xfd, byte(n), byte(n>>8), byte(n>>16))
	}
	b = append(b, 0xfe)
	return binary.LittleEndian.AppendUint64(b, n)
}

func appendLenencString(b []byte, s string) []byte {
	return append(appendLenencInt(b, uint64(len(s))), s...)
}

// columnDef is a ColumnDefinition41 of a VARCHAR column.
func columnDef(name string) []byte {
	var b []byte
	b = appendLenencString(b, "def")
	b = appendLenencString(b, "")
	b = appendLenencString(b, "")
	b = appendLenencString(b, "")
	b = appendLenencString(b, name)
	b = appendLenencString(b, name)
	b = append(b, 0x0c, charsetUTF8MB4, 0)
	b = binary.LittleEndian.AppendUint32(b, 4096)
	b = append(b, typeVarString, 0, 0, 0, 0, 0)
	return b
}

// resultSet is an encoded text result set: the packets' payloads, sent
// with fresh sequence ids each time.
type resultSet [][]byte

func newResultSet(columns []string, rows [][]string) resultSet {
	rs := make(resultSet, 0, len(rows)+len(columns)+3)
	rs = append(rs, appendLenencInt(nil, uint64(len(columns))))
	for _, c := range columns {
		rs = append(rs, columnDef(c))
	}
	rs = append(rs, eofPacket())
	for _, r := range rows {
		var p []byte
		for _, v := range r {
			p = appendLenencString(p, v)
		}
		rs = append(rs, p)
	}
	return append(rs, eofPacket())
}

func (c *conn) writeResultSet(rs resultSet) error {
	for _, p := range rs {
		c.writePacket(p)
	}
	return c.flush()
}

var errUnknownCommand = fmt.Errorf("command not simulated")
