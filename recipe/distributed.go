package recipe

// Distributed is the recipe's distributed: section. `yai run --ranks N` and `--hostfile` set
// ranks as --set distributed.ranks=N would, so the batch is checked against the world that
// will run it.
type Distributed struct {
	Ranks       int    `yaml:"ranks" default:"1" min:"1" max:"4096" doc:"processes training together (the world); each takes batch_size/ranks rows of every batch, so batch_size must divide by it"`
	Backend     string `yaml:"backend" default:"ring" enum:"ring,mpi,nccl,any" doc:"MLX distributed backend: ring (TCP, every build), mpi, nccl (CUDA builds), or any (MLX's pick)"`
	PeerTimeout int    `yaml:"peer_timeout" default:"60" min:"1" max:"86400" doc:"seconds a rank waits on a silent peer (no heartbeat) before every rank stops with an error"`
}
