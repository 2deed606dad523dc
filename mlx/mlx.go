// Package mlx binds the MLX array framework (C++ API, version 0.32) for Go.
//
// Rules every caller can rely on:
//   - All MLX work runs on one goroutine locked to one OS thread, because MLX default streams
//     and CPU encoders are thread-local. Functions here may be called from any goroutine: a
//     call made off the MLX thread is forwarded to it and waits. Use Do to run a whole block
//     of work on the MLX thread at once, which is much cheaper than forwarding op by op.
//   - Ownership is explicit. Every *Array owns one native handle until Free, which is
//     idempotent. A Scope frees every array created inside it except those kept. The garbage
//     collector never frees native memory.
//   - Ops panic with *Error on failure (a shape mismatch, say); Do recovers it and returns it
//     as an error, so a bad op never takes the process down. I/O functions return errors.
package mlx

/*
#cgo CXXFLAGS: -std=c++20 -O2
#cgo !darwin LDFLAGS: -lstdc++
#cgo darwin LDFLAGS: -lc++
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// Error is a failure reported by MLX, naming the op and the shapes of its inputs.
type Error struct {
	Op     string
	Shapes [][]int
	Msg    string
}

// IsAllocationError reports whether err is MLX failing to allocate memory (on Metal or CUDA;
// the CPU backend does not report it), which a smaller schedule of the same work may avoid.
func IsAllocationError(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	m := strings.ToLower(e.Msg)
	return strings.Contains(m, "out of memory") || strings.Contains(m, "unable to allocate") ||
		strings.Contains(m, "malloc") || strings.Contains(m, "failed to allocate")
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("mlx: ")
	b.WriteString(e.Op)
	if len(e.Shapes) > 0 {
		b.WriteString("(")
		for i, s := range e.Shapes {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprint(&b, s)
		}
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// mlxThread is the one goroutine, locked to its OS thread, that runs every MLX call.
var mlxThread struct {
	once sync.Once
	jobs chan func()
}

func startThread() {
	mlxThread.once.Do(func() {
		mlxThread.jobs = make(chan func())
		ready := make(chan struct{})
		go threadLoop(ready)
		<-ready
	})
}

func threadLoop(ready chan struct{}) {
	runtime.LockOSThread() // never unlocked: the thread belongs to MLX for good
	C.yai_thread_enter()
	close(ready)
	// A job that calls runtime.Goexit (t.Fatal in a test, say) ends this goroutine and its
	// locked thread; a new MLX thread takes over so later calls do not hang.
	defer func() { go threadLoop(make(chan struct{})) }()
	for job := range mlxThread.jobs {
		job()
	}
}

// OnThread reports whether the caller is running on the MLX thread.
func OnThread() bool { return C.yai_on_thread() == 1 }

// Do runs fn on the MLX thread and waits for it. An *Error panic inside fn is returned as
// an error; any other panic is raised again in the caller's goroutine. Nested calls run
// inline.
func Do(fn func() error) error {
	if OnThread() {
		return protect(fn)
	}
	startThread()
	var err error
	var panicked any
	returned := false
	done := make(chan struct{})
	mlxThread.jobs <- func() {
		defer close(done)
		defer func() { panicked = recover() }()
		err = protect(fn)
		returned = true
	}
	<-done
	if panicked != nil {
		panic(panicked)
	}
	if !returned {
		return &Error{Op: "do", Msg: "the function called runtime.Goexit on the MLX thread (t.Fatal inside mlx.Do?)"}
	}
	return err
}

// protect turns an *Error panic into a returned error. Scopes fn opened and left open (it
// panicked or exited) are closed so their arrays do not leak.
func protect(fn func() error) (err error) {
	depth := len(scopes)
	defer func() {
		for len(scopes) > depth {
			scopes[len(scopes)-1].Close()
		}
		if r := recover(); r != nil {
			if e, ok := r.(*Error); ok {
				err = e
				return
			}
			panic(r)
		}
	}()
	return fn()
}

// call runs f (a shim call) on the MLX thread. It reports whether the caller was already
// there, which decides whether new arrays join the caller's scope. On failure it panics
// with an *Error naming op and the input shapes.
func call(op string, inputs []*Array, f func() C.int) (onThread bool) {
	rc := f()
	if rc == C.YAI_OK {
		return true
	}
	msg := ""
	if rc == C.YAI_WRONG_THREAD {
		startThread()
		done := make(chan struct{})
		mlxThread.jobs <- func() {
			rc = f()
			if rc == C.YAI_ERR {
				msg = C.GoString(C.yai_last_error())
			}
			close(done)
		}
		<-done
		if rc == C.YAI_OK {
			return false
		}
	} else {
		msg = C.GoString(C.yai_last_error())
		onThread = true
	}
	shapes := make([][]int, 0, len(inputs))
	for _, in := range inputs {
		if in != nil && in.h != nil {
			shapes = append(shapes, in.Shape())
		}
	}
	panic(&Error{Op: op, Shapes: shapes, Msg: msg})
}

// Version is the MLX library's version string.
func Version() string { return C.GoString(C.yai_version()) }

// live counts Go-side array handles that have not been freed.
var live atomic.Int64

// LiveArrays is the number of native array handles not yet freed. Tests use it to prove
// that nothing leaks; the runtime exports it to triggers as mlx.arrays.
func LiveArrays() int64 { return live.Load() }

// NativeLiveArrays is the shim's own count of handles, a cross-check of LiveArrays.
func NativeLiveArrays() int64 { return int64(C.yai_live_arrays()) }
