//go:build !unix

package devup

import (
	"os"
	"os/exec"
	"syscall"
)

// Without Unix process groups and signals a child is stopped by itself, and stopping is a kill.
func setProcAttr(*exec.Cmd, syscall.Signal) {}

func signalGroup(p *os.Process, _ syscall.Signal) error { return p.Kill() }

func killGroup(p *os.Process) error { return p.Kill() }
