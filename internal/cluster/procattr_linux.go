package cluster

import "syscall"

// rankProcAttr puts a local rank in its own process group, so that a terminal's Ctrl-C
// reaches it once, through the launcher (a second signal quits a run at once), and has the
// kernel send it SIGTERM if the launcher dies, so no rank outlives its launch.
func rankProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
