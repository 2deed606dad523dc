package mlxbackend

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/stages"
)

// Ranks is the process group of a data-parallel run over MLX's distributed backend. The step
// sums gradients over it (train.AllSumOver), and the engine meets the other ranks through
// Exchange at every step boundary.
type Ranks struct {
	group *mlx.Group
}

// JoinRanks joins the group MLX's backend finds from its environment (MLX_RANK and
// MLX_HOSTFILE for the ring backend, as `yai run --ranks` and mlx.launch set them). A
// backend that cannot start is an error, never a silent group of one.
func JoinRanks(backend string) (*Ranks, error) {
	if !mlx.DistributedAvailable(backend) {
		return nil, fmt.Errorf("this MLX build has no %q distributed backend", backend)
	}
	g, err := mlx.InitDistributed(backend, true)
	if err != nil {
		return nil, fmt.Errorf("joining the %s group: %w", backend, err)
	}
	return &Ranks{group: g}, nil
}

func (r *Ranks) Rank() int  { return r.group.Rank() }
func (r *Ranks) World() int { return r.group.Size() }

// Group is the MLX group the ranks train over.
func (r *Ranks) Group() *mlx.Group { return r.group }

// Close frees the group's handle once the run is over.
func (r *Ranks) Close() { r.group.Free() }

// statusBytes is the fixed size of one rank's status on the wire: an all_gather needs the
// same shape everywhere.
const (
	statusBytes  = 512
	statusHeader = 1 + 1 + 4*8 + 2
	reasonBytes  = statusBytes - statusHeader
)

// Exchange all-gathers every rank's status in one small collective.
func (r *Ranks) Exchange(s stages.RankStatus) ([]stages.RankStatus, error) {
	var all []stages.RankStatus
	err := mlx.Do(func() error {
		scope := mlx.NewScope()
		defer scope.Close()
		got := mlx.Data[uint8](mlx.AllGather(mlx.FromSlice(encodeStatus(s)), r.group))
		for i := range r.World() {
			all = append(all, decodeStatus(got[i*statusBytes:(i+1)*statusBytes]))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(all) != r.World() {
		return nil, errors.New("ranks: the status exchange lost a rank")
	}
	return all, nil
}

func encodeStatus(s stages.RankStatus) []uint8 {
	b := make([]uint8, statusBytes)
	b[0] = uint8(s.Stop)
	if s.Checkpoint {
		b[1] = 1
	}
	for i, v := range []int64{s.Active, s.Peak, s.Cache, s.RSS} {
		binary.LittleEndian.PutUint64(b[2+8*i:], uint64(v))
	}
	reason := []byte(s.Reason)
	if len(reason) > reasonBytes {
		reason = reason[:reasonBytes]
		for !utf8.Valid(reason) { // never a broken character at the cut
			reason = reason[:len(reason)-1]
		}
	}
	binary.LittleEndian.PutUint16(b[statusHeader-2:], uint16(len(reason)))
	copy(b[statusHeader:], reason)
	return b
}

func decodeStatus(b []uint8) stages.RankStatus {
	s := stages.RankStatus{Stop: int(b[0]), Checkpoint: b[1] == 1}
	figs := make([]int64, 4)
	for i := range figs {
		figs[i] = int64(binary.LittleEndian.Uint64(b[2+8*i:]))
	}
	s.Active, s.Peak, s.Cache, s.RSS = figs[0], figs[1], figs[2], figs[3]
	n := int(binary.LittleEndian.Uint16(b[statusHeader-2:]))
	s.Reason = string(b[statusHeader : statusHeader+min(n, reasonBytes)])
	return s
}

var _ stages.Ranks = (*Ranks)(nil)
