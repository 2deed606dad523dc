// Shared by the shim's translation units: the array handle, wrapping, and the guard that
// turns C++ exceptions into a status and the thread's last error.
#ifndef YAI_SHIM_INTERNAL_H
#define YAI_SHIM_INTERNAL_H
#include <exception>

#include "mlx/array.h"
#include "shim.h"

struct yai_array_s {
  mlx::core::array a;
};

yai_array yai_wrap(mlx::core::array a);
bool yai_is_mlx_thread();
void yai_set_error(const char* msg);

#define YAI_GUARD(...)                              \
  if (!yai_is_mlx_thread()) return YAI_WRONG_THREAD; \
  try {                                             \
    __VA_ARGS__;                                    \
  } catch (const std::exception& e) {               \
    yai_set_error(e.what());                        \
    return YAI_ERR;                                 \
  } catch (...) {                                   \
    yai_set_error("unknown C++ exception");         \
    return YAI_ERR;                                 \
  }                                                 \
  return YAI_OK;

#endif
