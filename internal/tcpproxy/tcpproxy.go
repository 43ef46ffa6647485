// Package tcpproxy is a TCP relay for tests of broken connections: it
// listens on 127.0.0.1, forwards every connection to a target, and can
// hold its traffic and cut its connections (as a network failure would)
// while it keeps accepting new ones.
package tcpproxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// Proxy relays TCP connections from its address to a target.
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex // guards conns, held, refuse
	conns  map[net.Conn]struct{}
	held   chan struct{} // non-nil while traffic is held: closed on release
	refuse bool          // new connections are closed at once
	cuts   atomic.Int64
	wg     sync.WaitGroup
}

// Start listens on a free port of 127.0.0.1 and relays to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

// pipe copies src to dst, waiting while traffic is held, and closes both
// when either side ends.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			held := p.held
			p.mu.Unlock()
			if held != nil {
				<-held // released, or the connection is cut
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Hold stops relaying bytes (they wait in the proxy) until Release or Cut.
func (p *Proxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == nil {
		p.held = make(chan struct{})
	}
}

// Release resumes relaying after Hold.
func (p *Proxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held != nil {
		close(p.held)
		p.held = nil
	}
}

// Cut closes every relayed connection (bytes held are lost) and releases
// a Hold; new connections are relayed as before.
func (p *Proxy) Cut() {
	p.mu.Lock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, as a failed path
		}
		c.Close()
	}
	n := len(p.conns) / 2
	p.mu.Unlock()
	p.cuts.Add(int64(n))
	p.Release()
}

// Refuse makes the proxy close new connections at once (on) or relay them
// again (off): the path stays down.
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// Cuts returns how many connections Cut has closed.
func (p *Proxy) Cuts() int { return int(p.cuts.Load()) }

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
