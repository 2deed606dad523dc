package mlxbackend

/*
#include <libproc.h>
#include <sys/resource.h>
#include <unistd.h>

// yai_phys_footprint is the process's physical footprint, as Activity Monitor shows it:
// the memory macOS charges to the process, compressed and Metal buffers included.
static long long yai_phys_footprint(void) {
	struct rusage_info_v2 ri;
	if (proc_pid_rusage(getpid(), RUSAGE_INFO_V2, (rusage_info_t *)&ri) != 0) {
		return -1;
	}
	return (long long)ri.ri_phys_footprint;
}
*/
import "C"

import "github.com/yai-dev/yai/stages"

// RSS on macOS is the physical footprint (proc_pid_rusage), not the resident size, which
// leaves out compressed memory and so understates what a run costs.
func (MLXMemory) RSS() (int64, bool) {
	v := C.yai_phys_footprint()
	return int64(v), v >= 0
}

// platformFigures: this backend reads the physical footprint, so rss is measured.
func platformFigures(env *stages.Environment) { env.SetMeasured("rss") }
