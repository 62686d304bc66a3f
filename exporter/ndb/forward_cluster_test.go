//go:build cluster

package ndb

import (
	"io"
	"net"
	"sync"
	"testing"
)

// forwarder gives the test's mariadbd (unix socket only) a TCP address,
// as an SQL node has: each connection to 127.0.0.1:port is piped to the
// socket. Close is the SQL node going away: the listener and every
// piped connection close.
type forwarder struct {
	ln    net.Listener
	sock  string
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func forward(t testing.TB, sock string) *forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // kept open: the port stays ours
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{ln: ln, sock: sock}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.Close)
	return f
}

func (f *forwarder) Addr() string { return f.ln.Addr().String() }

func (f *forwarder) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("unix", f.sock)
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, c, s)
		f.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer f.wg.Done()
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		f.wg.Add(2)
		go pipe(c, s)
		go pipe(s, c)
	}
}

// Close stops accepting and cuts every connection, like a dead host.
func (f *forwarder) Close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
	f.mu.Unlock()
	f.wg.Wait()
}
