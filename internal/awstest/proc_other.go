//go:build !linux

package awstest

import (
	"os"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

func terminate(p *os.Process, hard bool) { _ = p.Kill() }
