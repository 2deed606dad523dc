package data

import "fmt"

// NumpyRandom reproduces numpy's legacy global generator (np.random.seed + np.random.permutation,
// MT19937), which mlx-lm uses to shuffle batch order. mlx-lm seeds it once per run
// (np.random.seed(args.seed)) and draws one permutation each time a batch iterator starts an
// epoch — training and validation iterators share that one stream. Share one NumpyRandom the
// same way to get mlx-lm's batch order exactly.
type NumpyRandom struct {
	state [624]uint32
	pos   int
}

// NewNumpyRandom is np.random.seed(seed).
func NewNumpyRandom(seed uint32) *NumpyRandom {
	r := &NumpyRandom{pos: 624}
	for i := range r.state {
		r.state[i] = seed
		seed = 1812433253*(seed^(seed>>30)) + uint32(i) + 1
	}
	return r
}

func (r *NumpyRandom) next() uint32 {
	if r.pos == 624 {
		r.twist()
	}
	y := r.state[r.pos]
	r.pos++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

func (r *NumpyRandom) twist() {
	const upper, lower = 0x80000000, 0x7fffffff
	for i := range 624 {
		y := r.state[i]&upper | r.state[(i+1)%624]&lower
		v := r.state[(i+397)%624] ^ y>>1
		if y&1 != 0 {
			v ^= 0x9908b0df
		}
		r.state[i] = v
	}
	r.pos = 0
}

// interval is numpy's random_interval: a uniform value in [0, max] by masked rejection.
func (r *NumpyRandom) interval(max uint32) uint32 {
	if max == 0 {
		return 0
	}
	mask := max
	mask |= mask >> 1
	mask |= mask >> 2
	mask |= mask >> 4
	mask |= mask >> 8
	mask |= mask >> 16
	for {
		if v := r.next() & mask; v <= max {
			return v
		}
	}
}

// Permutation is np.random.permutation(n): a Fisher-Yates shuffle of 0..n-1 from the end.
func (r *NumpyRandom) Permutation(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := int(r.interval(uint32(i)))
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// RandomState is a NumpyRandom's whole state, to save and restore a generator exactly.
type RandomState struct {
	Words [624]uint32 `json:"words"`
	Pos   int         `json:"pos"`
}

// State returns the generator's state.
func (r *NumpyRandom) State() RandomState { return RandomState{Words: r.state, Pos: r.pos} }

// SetState restores a state from State.
func (r *NumpyRandom) SetState(s RandomState) error {
	if s.Pos < 0 || s.Pos > 624 {
		return fmt.Errorf("random state position %d is outside 0..624", s.Pos)
	}
	r.state, r.pos = s.Words, s.Pos
	return nil
}
