package recipe

import (
	"strings"

	"github.com/yai-dev/yai/stages"
)

// Distributed is the recipe's distributed: section. `yai run --ranks N` and `--hostfile` set
// ranks as --set distributed.ranks=N would, so the batch is checked against the world that
// will run it.
type Distributed struct {
	Ranks       int    `yaml:"ranks" default:"1" min:"1" max:"4096" doc:"processes training together (the world); each takes batch_size/ranks rows of every batch, so batch_size must divide by it"`
	Backend     string `yaml:"backend" default:"ring" enum:"ring,mpi,nccl,any" doc:"MLX distributed backend: ring (TCP, every build), mpi, nccl (CUDA builds), or any (MLX's pick)"`
	PeerTimeout int    `yaml:"peer_timeout" default:"60" min:"1" max:"86400" doc:"seconds a rank waits on a silent peer (no heartbeat) before every rank stops with an error"`
}

// checkDistributedBackend refuses a distributed backend this build cannot start (NCCL
// without CUDA, MPI without an MPI library): the ranks would only fail once launched. It
// applies when several ranks run or the recipe names the backend.
func (l *linter) checkDistributedBackend(r *Recipe, env *stages.Environment) {
	at := valueOf(valueOf(r.Doc.Content[0], "distributed"), "backend")
	if r.Distributed.Ranks <= 1 && at == nil {
		return
	}
	ok, known := env.DistributedAvailable(r.Distributed.Backend)
	if !known || ok {
		return
	}
	if at == nil {
		at = valueOf(r.Doc.Content[0], "distributed")
	}
	var have []string
	for _, b := range []string{"ring", "mpi", "nccl"} {
		if ok, _ := env.DistributedAvailable(b); ok {
			have = append(have, b)
		}
	}
	d := l.errorf(at, "backend: this build of yai cannot run the %s distributed backend", r.Distributed.Backend)
	d.Detail = "it runs: " + strings.Join(have, ", ") + " (nccl needs a CUDA build, mpi an MPI library)"
}

// lintDistributed checks what several ranks need beyond a single process: every rank must
// run the step (it sums gradients with the others) on the same steps, so the step's trigger
// cannot depend on figures that differ between ranks.
func (l *linter) lintDistributed(r *Recipe) {
	if r.Distributed.Ranks <= 1 {
		return
	}
	for _, s := range r.Stages {
		if s.Kind == stages.Step.Name && s.When != "" {
			l.errorf(valueOf(s.Node, "when"), "when: with %d ranks the step must run on every rank on the same steps; a trigger may differ between ranks (use every: instead)", r.Distributed.Ranks)
		}
	}
}
