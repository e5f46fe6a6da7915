package devup

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// PortsInUseError names every port of the stack that something else already listens on, with
// the setting that moves each.
type PortsInUseError struct {
	Busy []BusyPort
}

// BusyPort is one port in use.
type BusyPort struct {
	Spec PortSpec
	Port int
}

func (e *PortsInUseError) Error() string {
	var b strings.Builder
	for i, p := range e.Busy {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "port %d (%s) is already in use on 127.0.0.1: stop what listens there, or move it with %s, e.g. make run %s=%d (devup -%s %d; 0 picks a free port)",
			p.Port, p.Spec.What, p.Spec.Env, p.Spec.Env, p.Port+10, p.Spec.Flag, p.Port+10)
	}
	return b.String()
}

// resolvePorts gives every 0 port a free one and checks that every port is free and used once.
func resolvePorts(p *Ports) error {
	seen := map[int]string{}
	busy := &PortsInUseError{}
	for _, s := range PortSpecs {
		port := s.Port(p)
		if *port == 0 {
			n, err := freePort()
			if err != nil {
				return err
			}
			*port = n
		}
		if other, dup := seen[*port]; dup {
			return fmt.Errorf("port %d is given to both %s and %s; move one with %s", *port, other, s.What, s.Env)
		}
		seen[*port] = s.What
		if err := portFree(*port); err != nil {
			if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EACCES) {
				return fmt.Errorf("checking port %d (%s): %w", *port, s.What, err)
			}
			busy.Busy = append(busy.Busy, BusyPort{Spec: s, Port: *port})
		}
	}
	if len(busy.Busy) > 0 {
		return busy
	}
	return nil
}

// portFree reports whether 127.0.0.1:port can be listened on now.
func portFree(port int) error {
	ln, err := net.Listen("tcp", loopback(port))
	if err != nil {
		return err
	}
	return ln.Close()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
