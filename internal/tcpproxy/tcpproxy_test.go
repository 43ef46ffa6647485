package tcpproxy

import (
	"bufio"
	"net"
	"testing"
)

// echo serves lines back on 127.0.0.1.
func echo(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := c.Write(append(sc.Bytes(), '\n')); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, r *bufio.Reader, s string) (string, error) {
	if _, err := c.Write([]byte(s + "\n")); err != nil {
		return "", err
	}
	return r.ReadString('\n')
}

func TestRelayCutRefuse(t *testing.T) {
	p, err := Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if got, err := roundTrip(c, r, "one"); err != nil || got != "one\n" {
		t.Fatalf("relay: %q, %v", got, err)
	}
	p.Hold()
	p.Cut()
	if got, err := roundTrip(c, r, "two"); err == nil {
		t.Fatalf("after a cut the connection still answers %q", got)
	}
	if p.Cuts() != 1 {
		t.Fatalf("Cuts = %d, want 1", p.Cuts())
	}
	// New connections are relayed after a cut, unless refused.
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := roundTrip(c2, bufio.NewReader(c2), "three"); err != nil || got != "three\n" {
		t.Fatalf("relay after cut: %q, %v", got, err)
	}
	p.Refuse(true)
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := roundTrip(c3, bufio.NewReader(c3), "four"); err == nil {
		t.Fatalf("refused connection answered %q", got)
	}
}
