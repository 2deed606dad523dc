// C interface over the MLX C++ API. Every function returns a status: YAI_OK, YAI_ERR (the
// message is in yai_last_error), or YAI_WRONG_THREAD when called off the MLX thread, in which
// case nothing was done and the Go side retries on the MLX thread.
#ifndef YAI_SHIM_H
#define YAI_SHIM_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { YAI_OK = 0, YAI_ERR = 1, YAI_WRONG_THREAD = 2 };

typedef struct yai_array_s* yai_array;   // owns one mlx::core::array
typedef struct yai_vec_s* yai_vec;       // owns a std::vector<mlx::core::array>
typedef struct yai_fn_s* yai_fn;         // owns a std::function over arrays (checkpoint, compile)
typedef struct yai_group_s* yai_group;   // owns a mlx::core::distributed::Group

const char* yai_last_error(void);
void yai_thread_enter(void);
int yai_on_thread(void);
int64_t yai_live_arrays(void);
const char* yai_version(void);

// Arrays.
int yai_array_free(yai_array a);
int yai_array_free_many(yai_array* arrays, int n);
int yai_array_from_data(const void* data, const int* shape, int ndim, int dtype, yai_array* out);
int yai_array_scalar(double v, int dtype, yai_array* out);
int yai_array_clone(yai_array a, yai_array* out);
int yai_array_ndim(yai_array a);
int yai_array_shape(yai_array a, int* shape);
int yai_array_dtype(yai_array a);
size_t yai_array_size(yai_array a);
size_t yai_array_nbytes(yai_array a);
int yai_array_read(yai_array a, void* dst, size_t nbytes);
int yai_array_item(yai_array a, double* out);

// Vectors of arrays.
int yai_vec_new(const yai_array* arrays, int n, yai_vec* out);
int yai_vec_free(yai_vec v);
int yai_vec_size(yai_vec v);
int yai_vec_get(yai_vec v, int i, yai_array* out);

// Ops, grouped by shape so one entry point serves a family.
int yai_unary(int op, yai_array a, yai_array* out);
int yai_binary(int op, yai_array a, yai_array b, yai_array* out);
int yai_reduce(int op, yai_array a, const int* axes, int naxes, int all, int keepdims, yai_array* out);
int yai_full(const int* shape, int ndim, double v, int dtype, yai_array* out);
int yai_arange(double start, double stop, double step, int dtype, yai_array* out);
int yai_astype(yai_array a, int dtype, yai_array* out);
int yai_reshape(yai_array a, const int* shape, int ndim, yai_array* out);
int yai_transpose(yai_array a, const int* perm, int n, yai_array* out);
int yai_broadcast_to(yai_array a, const int* shape, int ndim, yai_array* out);
int yai_expand_dims(yai_array a, int axis, yai_array* out);
int yai_squeeze(yai_array a, const int* axes, int naxes, yai_array* out);
int yai_concatenate(yai_vec v, int axis, yai_array* out);
int yai_stack(yai_vec v, int axis, yai_array* out);
int yai_split(yai_array a, const int* indices, int n, int sections, int axis, yai_vec* out);
int yai_slice(yai_array a, const int* start, const int* stop, const int* strides, int n, yai_array* out);
int yai_slice_update(yai_array src, yai_array upd, const int* start, const int* stop, const int* strides, int n, yai_array* out);
int yai_take(yai_array a, yai_array idx, int axis, int has_axis, yai_array* out);
int yai_take_along_axis(yai_array a, yai_array idx, int axis, yai_array* out);
int yai_where(yai_array c, yai_array a, yai_array b, yai_array* out);
int yai_softmax(yai_array a, const int* axes, int naxes, int precise, yai_array* out);
int yai_argreduce(int op, yai_array a, int axis, int keepdims, yai_array* out);
int yai_cumsum(yai_array a, int axis, int reverse, int inclusive, yai_array* out);
int yai_clip(yai_array a, yai_array lo, yai_array hi, yai_array* out);
int yai_tri(int upper, yai_array a, int k, yai_array* out);
int yai_addmm(yai_array c, yai_array a, yai_array b, float alpha, float beta, yai_array* out);
int yai_pad(yai_array a, const int* lo, const int* hi, int n, yai_array value, yai_array* out);
int yai_argpartition(yai_array a, int kth, int axis, yai_array* out);
int yai_flatten(yai_array a, int start_axis, int end_axis, yai_array* out);
int yai_unflatten(yai_array a, int axis, const int* shape, int ndim, yai_array* out);
int yai_swapaxes(yai_array a, int axis1, int axis2, yai_array* out);
int yai_moveaxis(yai_array a, int source, int destination, yai_array* out);
// Matrix products with matrix-level gather; NULL index arrays mean none.
int yai_gather_mm(yai_array a, yai_array b, yai_array lhs_indices, yai_array rhs_indices, int sorted_indices, yai_array* out);

// fast.
int yai_rms_norm(yai_array x, yai_array w, float eps, yai_array* out);
int yai_layer_norm(yai_array x, yai_array w, yai_array b, float eps, yai_array* out);
int yai_rope(yai_array x, int dims, int traditional, float base, int has_base, float scale, int offset, yai_array offset_arr, yai_array freqs, yai_array* out);
int yai_sdpa(yai_array q, yai_array k, yai_array v, float scale, const char* mask_mode, yai_array mask, yai_array* out);

// Quantization.
int yai_quantize(yai_array w, int group_size, int bits, const char* mode, yai_vec* out);
int yai_dequantize(yai_array w, yai_array scales, yai_array biases, int group_size, int bits, const char* mode, int dtype, yai_array* out);
int yai_quantized_matmul(yai_array x, yai_array w, yai_array scales, yai_array biases, int transpose, int group_size, int bits, const char* mode, yai_array* out);
int yai_gather_qmm(yai_array x, yai_array w, yai_array scales, yai_array biases, yai_array lhs_indices, yai_array rhs_indices, int transpose, int group_size, int bits, const char* mode, int sorted_indices, yai_array* out);

// Random, with explicit keys.
int yai_random_key(uint64_t seed, yai_array* out);
int yai_random_split(yai_array key, int num, yai_array* out);
int yai_random_uniform(yai_array lo, yai_array hi, const int* shape, int ndim, int dtype, yai_array key, yai_array* out);
int yai_random_normal(const int* shape, int ndim, int dtype, float loc, float scale, yai_array key, yai_array* out);
int yai_random_bernoulli(yai_array p, const int* shape, int ndim, yai_array key, yai_array* out);
int yai_random_categorical(yai_array logits, int axis, yai_array key, yai_array* out);

// Transforms. Go closures are identified by a handle the Go side resolves in yaiCallGo.
int yai_eval(yai_vec v);
int yai_async_eval(yai_vec v);
int yai_value_and_grad(uintptr_t fn, yai_vec inputs, const int* argnums, int nargnums, yai_vec* values, yai_vec* grads);
int yai_vjp(uintptr_t fn, yai_vec primals, yai_vec cotangents, yai_vec* outputs, yai_vec* vjps);
int yai_fn_from_go(uintptr_t fn, yai_fn* out);
int yai_fn_checkpoint(yai_fn f, yai_fn* out);
int yai_fn_custom_vjp(yai_fn f, uintptr_t vjp, yai_fn* out);
int yai_fn_compile(yai_fn f, int shapeless, yai_fn* out);
int yai_fn_call(yai_fn f, yai_vec inputs, yai_vec* outputs);
int yai_fn_free(yai_fn f);

// Memory.
int yai_memory(size_t* active, size_t* peak, size_t* cache);
int yai_reset_peak_memory(void);
int yai_clear_cache(void);
int yai_set_memory_limit(size_t limit, size_t* prev);
int yai_get_memory_limit(size_t* out);
int yai_set_cache_limit(size_t limit, size_t* prev);
int yai_set_wired_limit(size_t limit, size_t* prev);

// Safetensors.
// names and meta come back as malloc'd runs of NUL-terminated strings: one name per array, and
// key, value pairs for metadata. The caller frees them.
int yai_load_safetensors(const char* path, yai_vec* arrays, char** names, size_t* names_len, char** meta, size_t* meta_len, int* nmeta);
int yai_save_safetensors(const char* path, const char* const* names, yai_vec arrays, const char* const* meta_kv, int nmeta, int* err_no);

// Devices and streams.
int yai_default_device(int* type, int* index);
int yai_set_default_device(int type, int index);
int yai_gpu_available(void);
int yai_synchronize(void);
// The default device's name and architecture (NUL-terminated, truncated to their buffers)
// and, on CUDA, its compute capability (zero elsewhere).
int yai_device_info(char* name, int name_len, char* arch, int arch_len, int* cc_major, int* cc_minor);
int yai_new_stream(int type, int index, int* stream);
int yai_default_stream(int type, int index, int* stream);
int yai_set_default_stream(int type, int index, int stream);

// Distributed. The backend is MLX's own ("ring", "mpi", "nccl", "jaccl" or "any"); a NULL
// group means MLX's global group. Collectives are lazy like every op: they run, and fail,
// when evaluated.
int yai_dist_is_available(const char* backend);
int yai_dist_init(int strict, const char* backend, yai_group* out);
int yai_group_rank(yai_group g);
int yai_group_size(yai_group g);
int yai_group_free(yai_group g);
int yai_dist_collective(int op, yai_array x, yai_group g, yai_array* out);
int yai_dist_send(yai_array x, int dst, yai_group g, yai_array* out);
int yai_dist_recv_like(yai_array like, int src, yai_group g, yai_array* out);

#ifdef __cplusplus
}
#endif
#endif
