// Distributed part of shim.h: MLX's distributed API, whatever backend this libmlx carries
// (ring and MPI on CPU builds, NCCL on CUDA builds). Nothing here names a backend.
#include "shim.h"

#include <string>

#include "mlx/distributed/distributed.h"
#include "mlx/distributed/ops.h"
#include "shim_internal.h"

namespace dist = mlx::core::distributed;

struct yai_group_s {
  dist::Group g;
};

namespace {
std::optional<dist::Group> group_of(yai_group g) {
  if (g == nullptr) return std::nullopt;
  return g->g;
}
}  // namespace

extern "C" {

int yai_dist_is_available(const char* backend) { return dist::is_available(backend) ? 1 : 0; }

int yai_dist_init(int strict, const char* backend, yai_group* out) {
  YAI_GUARD(*out = new yai_group_s{dist::init(strict != 0, backend)})
}

int yai_group_rank(yai_group g) { return g->g.rank(); }
int yai_group_size(yai_group g) { return g->g.size(); }
int yai_group_free(yai_group g) {
  delete g;
  return YAI_OK;
}

// Collective op codes shared with the Go side (distributed.go).
int yai_dist_collective(int op, yai_array x, yai_group g, yai_array* out) {
  YAI_GUARD({
    switch (op) {
      case 0: *out = yai_wrap(dist::all_sum(x->a, group_of(g))); break;
      case 1: *out = yai_wrap(dist::all_gather(x->a, group_of(g))); break;
      case 2: *out = yai_wrap(dist::all_max(x->a, group_of(g))); break;
      case 3: *out = yai_wrap(dist::all_min(x->a, group_of(g))); break;
      default: throw std::invalid_argument("unknown collective " + std::to_string(op));
    }
  })
}

int yai_dist_send(yai_array x, int dst, yai_group g, yai_array* out) {
  YAI_GUARD(*out = yai_wrap(dist::send(x->a, dst, group_of(g))))
}

int yai_dist_recv_like(yai_array like, int src, yai_group g, yai_array* out) {
  YAI_GUARD(*out = yai_wrap(dist::recv_like(like->a, src, group_of(g))))
}

}  // extern "C"
