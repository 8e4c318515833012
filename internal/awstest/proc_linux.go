package awstest

import (
	"os"
	"syscall"
)

// sysProcAttr puts moto in its own process group (so Stop ends a wrapper's children too) and has
// the kernel end it when the test binary dies without calling Stop.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// terminate signals the process group of p: SIGTERM, or SIGKILL when hard.
func terminate(p *os.Process, hard bool) {
	sig := syscall.SIGTERM
	if hard {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-p.Pid, sig)
}
