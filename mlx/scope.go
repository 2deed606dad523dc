package mlx

/*
#include "shim.h"
*/
import "C"

// scopes is the stack of open scopes on the MLX thread. Only the MLX thread touches it.
var scopes []*Scope

// Scope frees, on Close, every array created inside it on the MLX thread, except those
// kept. Scopes nest: a kept array moves to the enclosing scope, or to the caller when there
// is none.
type Scope struct {
	arrays []*Array
	parent *Scope
	closed bool
}

// NewScope opens a scope. It must be called on the MLX thread (inside Do), and closed there.
func NewScope() *Scope {
	if !OnThread() {
		panic(&Error{Op: "scope", Msg: "scopes are opened on the MLX thread: call NewScope inside mlx.Do"})
	}
	s := &Scope{}
	if len(scopes) > 0 {
		s.parent = scopes[len(scopes)-1]
	}
	scopes = append(scopes, s)
	return s
}

// Keep lets arrays outlive the scope: they move to the enclosing scope, or become owned by
// the caller. Arrays created elsewhere are left alone. It returns its first argument for
// convenience.
func (s *Scope) Keep(arrays ...*Array) *Array {
	for _, a := range arrays {
		if a == nil || a.scope != s {
			continue
		}
		a.scope = s.parent
		if s.parent != nil {
			s.parent.arrays = append(s.parent.arrays, a)
		}
	}
	if len(arrays) == 0 {
		return nil
	}
	return arrays[0]
}

// Close frees every array of the scope not kept, and closes any inner scope left open.
// Closing twice does nothing.
func (s *Scope) Close() {
	if s.closed {
		return
	}
	for i := len(scopes) - 1; i >= 0; i-- {
		if scopes[i] == s {
			for j := len(scopes) - 1; j > i; j-- {
				scopes[j].Close()
			}
			scopes = scopes[:i]
			break
		}
	}
	freeScoped(s)
	s.arrays = nil
	s.closed = true
}

// Scoped runs fn on the MLX thread inside a new scope and returns the arrays fn returns,
// owned by the caller (or the enclosing scope); everything else fn created is freed.
func Scoped(fn func() []*Array) (kept []*Array, err error) {
	err = Do(func() error {
		s := NewScope()
		defer s.Close()
		kept = fn()
		s.Keep(kept...)
		return nil
	})
	return kept, err
}

// Detach takes arrays out of whatever scope holds them: the caller owns them from now on
// and frees them itself. Long-lived state made while a scope is open (model weights,
// precomputed tables) needs it.
func Detach(arrays ...*Array) {
	for _, a := range arrays {
		if a != nil {
			a.scope = nil
		}
	}
}

// freeScoped frees the scope's arrays in one native call: scopes free hundreds of arrays per
// training step, and one cgo call per array would dominate small steps.
func freeScoped(s *Scope) {
	handles := make([]C.yai_array, 0, len(s.arrays))
	for _, a := range s.arrays {
		if a.scope == s && a.h != nil {
			handles = append(handles, a.h)
			a.h = nil
		}
	}
	if len(handles) == 0 {
		return
	}
	call("free", nil, func() C.int { return C.yai_array_free_many(&handles[0], C.int(len(handles))) })
	live.Add(-int64(len(handles)))
}
