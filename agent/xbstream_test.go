package agent

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nines-project/nines/galera"
)

// TestXBCaptureReadsMbstream feeds a stream made by the real mbstream
// through the capture in writes of every size, and checks that the
// wanted files come out whole and the rest is passed over.
func TestXBCaptureReadsMbstream(t *testing.T) {
	bin, err := toolMbstream.find()
	if err != nil {
		t.Fatalf("the test needs mbstream: %v", err)
	}
	dir := t.TempDir()
	big := make([]byte, 3<<20+17) // several chunks
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"ibdata1":        big,
		binlogInfoFile:   []byte("binlog.000003\t379\t0-1-14\n"),
		galeraInfoFile:   []byte("99945404-e931-11f1-8810-cec29ff8cd55:8 0\n"),
		"empty":          {},
		"app/t.ibd":      big[:100000],
		"xtrabackup_inf": []byte("a name that is a prefix of one wanted"),
	}
	var names []string
	for name, b := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	cmd := exec.Command(bin, append([]string{"-c", "-C", dir}, names...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stream, err := cmd.Output()
	if err != nil {
		t.Fatalf("mbstream -c: %v: %s", err, stderr.String())
	}
	for _, size := range []int{1, 7, 14, 4096, 32 << 10, len(stream)} {
		x := newXBCapture(binlogInfoFile, galeraInfoFile, "empty")
		for p := stream; len(p) > 0; {
			k := min(size, len(p))
			if n, err := x.Write(p[:k]); n != k || err != nil {
				t.Fatalf("write: %d, %v", n, err)
			}
			p = p[k:]
		}
		got, err := x.result()
		if err != nil {
			t.Fatalf("writes of %d bytes: %v", size, err)
		}
		for _, name := range []string{binlogInfoFile, galeraInfoFile} {
			if !bytes.Equal(got[name], files[name]) {
				t.Errorf("writes of %d bytes: %s = %q", size, name, got[name])
			}
		}
		if len(got) > 3 || got["ibdata1"] != nil {
			t.Errorf("writes of %d bytes: kept %d files", size, len(got))
		}
	}
	pos, gtid, err := parseBinlogInfo(files[binlogInfoFile])
	if err != nil || pos != (binlogPos{"binlog.000003", 379}) || gtid != "0-1-14" {
		t.Errorf("binlog info: %+v %q %v", pos, gtid, err)
	}
	g, err := parseGaleraInfo(files[galeraInfoFile])
	if err != nil || g != (galera.Position{UUID: "99945404-e931-11f1-8810-cec29ff8cd55", Seqno: 8}) {
		t.Errorf("galera info: %+v %v", g, err)
	}
}

// xbChunk builds one payload chunk by the format's description.
func xbChunk(path string, offset uint64, payload []byte, sum uint32) []byte {
	var b bytes.Buffer
	b.WriteString(xbMagic)
	b.WriteByte(0)
	b.WriteByte('P')
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(path)))
	b.WriteString(path)
	_ = binary.Write(&b, binary.LittleEndian, uint64(len(payload)))
	_ = binary.Write(&b, binary.LittleEndian, offset)
	_ = binary.Write(&b, binary.LittleEndian, sum)
	b.Write(payload)
	return b.Bytes()
}

func TestXBCaptureRejectsBrokenStreams(t *testing.T) {
	good := []byte("binlog.000001\t4\t0-1-1\n")
	sum := crc32.ChecksumIEEE(good)
	for _, tt := range []struct {
		name   string
		stream []byte
		want   string
	}{
		{"bad magic", append([]byte("XBSTCK02"), xbChunk(binlogInfoFile, 0, good, sum)[8:]...), "wrong chunk magic"},
		{"bad checksum", xbChunk(binlogInfoFile, 0, good, sum+1), "CRC-32"},
		{"cut in a header", xbChunk(binlogInfoFile, 0, good, sum)[:20], "ends inside a chunk"},
		{"cut in a payload", xbChunk(binlogInfoFile, 0, good, sum)[:60], "ends inside a chunk"},
	} {
		x := newXBCapture(binlogInfoFile)
		if n, err := x.Write(tt.stream); n != len(tt.stream) || err != nil {
			t.Fatalf("%s: the capture must never fail the stream: %d, %v", tt.name, n, err)
		}
		if _, err := x.result(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	// Two chunks of one file, out of order, land in place.
	x := newXBCapture(binlogInfoFile)
	x.Write(xbChunk(binlogInfoFile, 5, good[5:], crc32.ChecksumIEEE(good[5:])))
	x.Write(xbChunk(binlogInfoFile, 0, good[:5], crc32.ChecksumIEEE(good[:5])))
	if files, err := x.result(); err != nil || !bytes.Equal(files[binlogInfoFile], good) {
		t.Errorf("chunks out of order: %q, %v", files[binlogInfoFile], err)
	}
}
