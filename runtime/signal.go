package runtime

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// SignalError is why a run's context was cancelled: a signal asked the run to stop.
type SignalError struct{ Signal syscall.Signal }

func (s SignalError) Error() string { return "stopped by " + s.Name() }

// ExitCode is the conventional 128 + signal number: 129 SIGHUP, 130 SIGINT, 143 SIGTERM.
func (s SignalError) ExitCode() int { return 128 + int(s.Signal) }

// Name is the signal's name, such as SIGTERM.
func (s SignalError) Name() string {
	switch s.Signal {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.Signal.String()
}

// stopSignals are the signals that end a run gracefully: Ctrl-C, docker stop / systemd /
// timeout, and a closed terminal or ssh session.
var stopSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// WithSignals returns a context cancelled, with a SignalError as its cause, by the first
// SIGINT, SIGTERM or SIGHUP: the run then stops at the next step boundary, checkpoints and
// runs teardown. A second signal exits at once with that signal's code; every file yai writes
// is written atomically, so none is left torn.
func WithSignals(parent context.Context, msg io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, stopSignals...)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			sig := SignalError{s.(syscall.Signal)}
			fmt.Fprintf(msg, "\nyai: %s; stopping after this step and saving (send it again to quit now)\n", sig.Name())
			cancel(sig)
		case <-done:
			return
		}
		select {
		case s := <-ch:
			sig := SignalError{s.(syscall.Signal)}
			fmt.Fprintf(msg, "yai: %s again; quitting without saving\n", sig.Name())
			os.Exit(sig.ExitCode())
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}
