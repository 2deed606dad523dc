//go:build !linux

package cluster

import "syscall"

// rankProcAttr puts a local rank in its own process group, so that a terminal's Ctrl-C
// reaches it once, through the launcher (a second signal quits a run at once).
func rankProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
