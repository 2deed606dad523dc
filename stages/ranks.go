package stages

// Ranks is the process group of a data-parallel run, as the backend joined it. Every rank
// runs the same recipe; the engine meets the others once per step, at the step boundary.
type Ranks interface {
	Rank() int
	World() int
	// Exchange is the step boundary: every rank gives its status and receives every rank's,
	// in rank order. It returns an error when a peer is gone.
	Exchange(RankStatus) ([]RankStatus, error)
}

// RankStatus is what a rank tells the others at a step boundary: whether it wants to stop
// (and why), and its memory figures for rank 0's metrics.
type RankStatus struct {
	Stop       int  // exit code of the stop it asks for; 0 when it goes on
	Checkpoint bool // whether that stop saves a checkpoint
	Reason     string
	Active     int64
	Peak       int64
	Cache      int64
	RSS        int64
}
