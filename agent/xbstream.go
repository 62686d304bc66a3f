package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// xbstream (mbstream) chunk layout, as mariadb-backup writes it
// (extra/mariabackup/xbstream_read.cc): the magic "XBSTCK01", a flags
// byte, a type byte ('P' payload, 'E' end of file), the path length
// (uint32 LE) and the path; payload chunks go on with the payload length
// and its offset in the file (uint64 LE each), a CRC-32 of the payload
// (uint32 LE) and the payload.
const (
	xbMagic       = "XBSTCK01"
	xbFixedHeader = len(xbMagic) + 1 + 1 + 4
	xbPayloadHead = 8 + 8 + 4
	xbTypeEOF     = 'E'
	xbMaxPath     = 4096
	// xbMaxCapture bounds what is kept of one captured file: the files
	// read here are one line long.
	xbMaxCapture = 64 << 10
)

// xbCapture picks the files named in want out of an xbstream as it streams
// past, so a backup's position files (xtrabackup_binlog_info,
// xtrabackup_galera_info) are read without extracting the backup to disk.
// It is an io.Writer that never fails: a stream it cannot parse leaves the
// reason in err, and the backup itself goes on.
type xbCapture struct {
	want  map[string]bool
	files map[string][]byte
	err   error

	head      []byte // the chunk header read so far
	remaining int64  // payload bytes of the current chunk still to come
	keep      string // path of the current chunk when it is captured
	offset    int64  // where the current payload goes in its file
	sum       uint32 // CRC-32 the current chunk's header announced
	crc       uint32 // CRC-32 of the payload seen so far
}

func newXBCapture(names ...string) *xbCapture {
	x := &xbCapture{want: map[string]bool{}, files: map[string][]byte{}}
	for _, n := range names {
		x.want[n] = true
	}
	return x
}

func (x *xbCapture) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && x.err == nil {
		if x.remaining > 0 {
			k := int(min(int64(len(p)), x.remaining))
			if x.keep != "" {
				x.capture(p[:k])
			}
			p, x.remaining = p[k:], x.remaining-int64(k)
			if x.remaining == 0 && x.keep != "" && x.crc != x.sum {
				x.err = fmt.Errorf("xbstream: chunk of %q: CRC-32 %08x, header says %08x", x.keep, x.crc, x.sum)
			}
			continue
		}
		need, err := x.headerLen()
		if err != nil {
			x.err = err
			break
		}
		if len(x.head) < need {
			k := min(need-len(x.head), len(p))
			x.head, p = append(x.head, p[:k]...), p[k:]
			continue
		}
		x.endHeader()
	}
	// A header completed by the last bytes is ended now: the stream may
	// end with it (an 'E' chunk, or an empty payload).
	if x.err == nil && x.remaining == 0 && len(x.head) >= xbFixedHeader {
		if need, err := x.headerLen(); err == nil && len(x.head) == need {
			x.endHeader()
		}
	}
	return n, nil
}

// headerLen is the length of the current chunk's header, as far as the
// bytes read so far tell.
func (x *xbCapture) headerLen() (int, error) {
	if len(x.head) < xbFixedHeader {
		return xbFixedHeader, nil
	}
	if string(x.head[:len(xbMagic)]) != xbMagic {
		return 0, errors.New("xbstream: wrong chunk magic")
	}
	pathLen := int(binary.LittleEndian.Uint32(x.head[10:14]))
	if pathLen >= xbMaxPath {
		return 0, fmt.Errorf("xbstream: path length %d", pathLen)
	}
	if x.head[9] == xbTypeEOF {
		return xbFixedHeader + pathLen, nil
	}
	return xbFixedHeader + pathLen + xbPayloadHead, nil
}

// endHeader starts the payload of the chunk whose header is complete.
func (x *xbCapture) endHeader() {
	pathLen := int(binary.LittleEndian.Uint32(x.head[10:14]))
	path := string(x.head[xbFixedHeader : xbFixedHeader+pathLen])
	x.keep, x.remaining, x.crc = "", 0, 0
	if x.head[9] != xbTypeEOF {
		rest := x.head[xbFixedHeader+pathLen:]
		length := binary.LittleEndian.Uint64(rest[0:8])
		x.offset = int64(binary.LittleEndian.Uint64(rest[8:16]))
		x.sum = binary.LittleEndian.Uint32(rest[16:20])
		if length > 1<<40 {
			x.err = fmt.Errorf("xbstream: chunk of %q is %d bytes", path, length)
		}
		x.remaining = int64(length)
		if x.want[path] && x.offset+x.remaining <= xbMaxCapture {
			x.keep = path
		}
	}
	x.head = x.head[:0]
}

func (x *xbCapture) capture(b []byte) {
	x.crc = crc32.Update(x.crc, crc32.IEEETable, b)
	f := x.files[x.keep]
	if end := x.offset + int64(len(b)); end > int64(len(f)) {
		f = append(f, make([]byte, end-int64(len(f)))...)
	}
	copy(f[x.offset:], b)
	x.offset += int64(len(b))
	x.files[x.keep] = f
}

// result is the captured files, or why the stream could not be read. A
// stream that ends inside a chunk is an error too.
func (x *xbCapture) result() (map[string][]byte, error) {
	if x.err == nil && (x.remaining > 0 || len(x.head) > 0) {
		return x.files, errors.New("xbstream: the stream ends inside a chunk")
	}
	return x.files, x.err
}
