package runtime

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
)

// WithInterrupt returns a context cancelled by the first Ctrl-C (the run then stops at the next
// step boundary and runs teardown). A second Ctrl-C exits at once with code 130.
func WithInterrupt(parent context.Context, msg io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			fmt.Fprintln(msg, "\nyai: interrupted; stopping after this step and saving (Ctrl-C again to quit now)")
			cancel()
		case <-done:
			return
		}
		select {
		case <-ch:
			fmt.Fprintln(msg, "yai: quit without saving")
			os.Exit(130)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}
}
