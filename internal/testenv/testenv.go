// Package testenv starts the real servers integration tests need (Azurite for Table Storage),
// each on a free loopback port, and stops them when the test binary ends. A missing server is a
// test failure with the command that installs it, never a silent skip.
package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// ModuleRoot is the directory holding go.mod, found from the working directory upwards.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
