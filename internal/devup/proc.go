package devup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// child is a process devup started, in a process group of its own: a Ctrl-C at the terminal
// reaches devup only, and devup stops its children in order. Stopping signals the child's
// group, so what the child itself started goes too, and nothing else does.
type child struct {
	name string
	cmd  *exec.Cmd
	stop syscall.Signal // what asks it to end: SIGTERM, or SIGINT for programs that save only then
	done chan struct{}
	err  error // Wait's result, set before done is closed
}

// startChild starts cmd as a group leader that stop asks to end with sig. On Linux the child
// also gets sig if devup dies without stopping it (a kill -9), so no orphan keeps a port.
func startChild(name string, cmd *exec.Cmd, sig syscall.Signal) (*child, error) {
	setProcAttr(cmd, sig)
	cmd.WaitDelay = 2 * time.Second // bound Wait's wait for output still being copied
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, stop: sig, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// Pid is the child's process id (and its group's id on Unix).
func (c *child) Pid() int { return c.cmd.Process.Pid }

// exited reports whether the child has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop asks the child's group to end (its stop signal), waits up to grace, then kills the group; once
// the child has ended, what it started and left behind in its group is killed too. The group
// is signalled while its leader lives, or while members keep its id in use, or right after:
// the kernel hands out a group's id again only after the id space wraps around.
func (c *child) terminate(grace time.Duration) error {
	if c == nil {
		return nil
	}
	if c.exited() {
		_ = killGroup(c.cmd.Process) // leftovers only; usually there are none (ESRCH)
		return nil
	}
	if err := signalGroup(c.cmd.Process, c.stop); err != nil && !c.exited() {
		return fmt.Errorf("stopping %s: %w", c.name, err)
	}
	var err error
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = killGroup(c.cmd.Process)
		<-c.done
		err = fmt.Errorf("%s did not stop within %s of %s and was killed", c.name, grace, c.stop)
	}
	_ = killGroup(c.cmd.Process)
	return err
}

// exitError describes how a child ended on its own.
func (c *child) exitError() error {
	var ee *exec.ExitError
	switch {
	case c.err == nil:
		return fmt.Errorf("%s exited", c.name)
	case errors.As(c.err, &ee):
		return fmt.Errorf("%s exited: %s", c.name, ee.ProcessState)
	}
	return fmt.Errorf("%s: %w", c.name, c.err)
}

// environWithout is the process environment minus the named variables, so a child reads the
// settings devup gives it and not stray ones from the shell.
func environWithout(names map[string]bool) []string {
	var env []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); !names[name] {
			env = append(env, kv)
		}
	}
	return env
}
