// Implementation of shim.h: a thin, exception-safe layer over the MLX C++ API.
#include "shim.h"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>

#include "mlx/mlx.h"
#include "shim_internal.h"

namespace mx = mlx::core;

struct yai_vec_s {
  std::vector<mx::array> v;
};
struct yai_fn_s {
  std::function<std::vector<mx::array>(const std::vector<mx::array>&)> f;
};

namespace {

thread_local std::string last_error;
thread_local bool on_mlx_thread = false;
std::atomic<int64_t> live_arrays{0};

yai_array wrap(mx::array a) {
  live_arrays.fetch_add(1, std::memory_order_relaxed);
  return new yai_array_s{std::move(a)};
}

}  // namespace

yai_array yai_wrap(mx::array a) { return wrap(std::move(a)); }
bool yai_is_mlx_thread() { return on_mlx_thread; }
void yai_set_error(const char* msg) { last_error = msg; }

namespace {

yai_vec wrap_vec(std::vector<mx::array> v) { return new yai_vec_s{std::move(v)}; }

std::optional<mx::array> opt(yai_array a) {
  if (a == nullptr) return std::nullopt;
  return a->a;
}

mx::Shape to_shape(const int* s, int n) { return mx::Shape(s, s + n); }

std::vector<int> to_ints(const int* s, int n) { return std::vector<int>(s, s + n); }

// Dtype codes shared with the Go side (dtype.go).
mx::Dtype to_dtype(int code) {
  switch (code) {
    case 0: return mx::bool_;
    case 1: return mx::uint8;
    case 2: return mx::uint16;
    case 3: return mx::uint32;
    case 4: return mx::uint64;
    case 5: return mx::int8;
    case 6: return mx::int16;
    case 7: return mx::int32;
    case 8: return mx::int64;
    case 9: return mx::float16;
    case 10: return mx::float32;
    case 11: return mx::float64;
    case 12: return mx::bfloat16;
    case 13: return mx::complex64;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(code));
}

int from_dtype(mx::Dtype d) {
  switch (d.val()) {
    case mx::Dtype::Val::bool_: return 0;
    case mx::Dtype::Val::uint8: return 1;
    case mx::Dtype::Val::uint16: return 2;
    case mx::Dtype::Val::uint32: return 3;
    case mx::Dtype::Val::uint64: return 4;
    case mx::Dtype::Val::int8: return 5;
    case mx::Dtype::Val::int16: return 6;
    case mx::Dtype::Val::int32: return 7;
    case mx::Dtype::Val::int64: return 8;
    case mx::Dtype::Val::float16: return 9;
    case mx::Dtype::Val::float32: return 10;
    case mx::Dtype::Val::float64: return 11;
    case mx::Dtype::Val::bfloat16: return 12;
    case mx::Dtype::Val::complex64: return 13;
  }
  return -1;
}

}  // namespace

// GUARD wraps a body: refuses to run off the MLX thread and turns C++ exceptions into YAI_ERR.
#define GUARD(...)                                   \
  if (!on_mlx_thread) return YAI_WRONG_THREAD;       \
  try {                                              \
    __VA_ARGS__;                                     \
  } catch (const std::exception& e) {                \
    last_error = e.what();                           \
    return YAI_ERR;                                  \
  } catch (...) {                                    \
    last_error = "unknown C++ exception";            \
    return YAI_ERR;                                  \
  }                                                  \
  return YAI_OK;

// GUARD_ANY_THREAD is GUARD for calls that touch no stream or encoder.
#define GUARD_ANY_THREAD(...)                        \
  try {                                              \
    __VA_ARGS__;                                     \
  } catch (const std::exception& e) {                \
    last_error = e.what();                           \
    return YAI_ERR;                                  \
  }                                                  \
  return YAI_OK;

// Go closures are called through this function, exported by the Go side (closure.go). It
// returns 0 on success and fills *out; otherwise *err is a malloc'd message.
extern "C" int yaiCallGo(uintptr_t fn, yai_vec inputs, yai_vec* out, char** err);

namespace {
std::function<std::vector<mx::array>(const std::vector<mx::array>&)> go_function(uintptr_t fn) {
  return [fn](const std::vector<mx::array>& inputs) {
    yai_vec_s in{inputs};
    yai_vec out = nullptr;
    char* err = nullptr;
    if (yaiCallGo(fn, &in, &out, &err) != 0) {
      std::string msg = err ? err : "Go function failed";
      std::free(err);
      throw std::runtime_error(msg);
    }
    std::vector<mx::array> result = std::move(out->v);
    delete out;
    return result;
  };
}
}  // namespace

extern "C" {

const char* yai_last_error(void) { return last_error.c_str(); }
void yai_thread_enter(void) { on_mlx_thread = true; }
int yai_on_thread(void) { return on_mlx_thread ? 1 : 0; }
int64_t yai_live_arrays(void) { return live_arrays.load(); }
const char* yai_version(void) { return mx::version(); }

int yai_array_free(yai_array a) {
  GUARD(if (a != nullptr) {
    live_arrays.fetch_sub(1, std::memory_order_relaxed);
    delete a;
  })
}

int yai_array_free_many(yai_array* arrays, int n) {
  GUARD(for (int i = 0; i < n; i++) {
    live_arrays.fetch_sub(1, std::memory_order_relaxed);
    delete arrays[i];
  })
}

int yai_array_from_data(const void* data, const int* shape, int ndim, int dtype, yai_array* out) {
  GUARD({
    mx::Dtype dt = to_dtype(dtype);
    mx::Shape sh = to_shape(shape, ndim);
    // The constructor copies the elements, so Go memory is never referenced after this call.
    auto make = [&](auto* p) { return mx::array(p, sh, dt); };
    switch (dtype) {
      case 0: *out = wrap(make(static_cast<const bool*>(data))); break;
      case 1: *out = wrap(make(static_cast<const uint8_t*>(data))); break;
      case 2: *out = wrap(make(static_cast<const uint16_t*>(data))); break;
      case 3: *out = wrap(make(static_cast<const uint32_t*>(data))); break;
      case 4: *out = wrap(make(static_cast<const uint64_t*>(data))); break;
      case 5: *out = wrap(make(static_cast<const int8_t*>(data))); break;
      case 6: *out = wrap(make(static_cast<const int16_t*>(data))); break;
      case 7: *out = wrap(make(static_cast<const int32_t*>(data))); break;
      case 8: *out = wrap(make(static_cast<const int64_t*>(data))); break;
      case 9: *out = wrap(make(static_cast<const mx::float16_t*>(data))); break;
      case 10: *out = wrap(make(static_cast<const float*>(data))); break;
      case 11: *out = wrap(make(static_cast<const double*>(data))); break;
      case 12: *out = wrap(make(static_cast<const mx::bfloat16_t*>(data))); break;
      case 13: *out = wrap(make(static_cast<const mx::complex64_t*>(data))); break;
      default: throw std::invalid_argument("unknown dtype code " + std::to_string(dtype));
    }
  })
}

int yai_array_scalar(double v, int dtype, yai_array* out) {
  // The value is converted to dtype on construction: no graph, no evaluation.
  GUARD(*out = wrap(mx::array(v, to_dtype(dtype))))
}

int yai_array_clone(yai_array a, yai_array* out) { GUARD(*out = wrap(a->a)) }
int yai_array_ndim(yai_array a) { return static_cast<int>(a->a.ndim()); }
int yai_array_shape(yai_array a, int* shape) {
  for (size_t i = 0; i < a->a.ndim(); i++) shape[i] = a->a.shape(i);
  return YAI_OK;
}
int yai_array_dtype(yai_array a) { return from_dtype(a->a.dtype()); }
size_t yai_array_size(yai_array a) { return a->a.size(); }
size_t yai_array_nbytes(yai_array a) { return a->a.nbytes(); }

int yai_array_read(yai_array a, void* dst, size_t nbytes) {
  GUARD({
    // A contiguous copy makes strided or broadcast views readable as plain row-major data.
    mx::array c = mx::contiguous(a->a);
    mx::eval(c);
    if (c.nbytes() != nbytes) throw std::invalid_argument("read: size mismatch");
    if (nbytes > 0) std::memcpy(dst, c.data<void>(), nbytes);
  })
}

int yai_array_item(yai_array a, double* out) {
  GUARD({
    if (a->a.size() != 1) throw std::invalid_argument("item: array has " + std::to_string(a->a.size()) + " elements, want 1");
    mx::array c = mx::astype(mx::reshape(a->a, {}), mx::float64, mx::Device::cpu);
    mx::eval(c);
    *out = c.item<double>();
  })
}

int yai_vec_new(const yai_array* arrays, int n, yai_vec* out) {
  GUARD({
    std::vector<mx::array> v;
    v.reserve(n);
    for (int i = 0; i < n; i++) v.push_back(arrays[i]->a);
    *out = wrap_vec(std::move(v));
  })
}
int yai_vec_free(yai_vec v) {
  delete v;
  return YAI_OK;
}
int yai_vec_size(yai_vec v) { return static_cast<int>(v->v.size()); }
int yai_vec_get(yai_vec v, int i, yai_array* out) { GUARD(*out = wrap(v->v.at(i))) }

// Op codes shared with the Go side (ops.go).
int yai_unary(int op, yai_array a, yai_array* out) {
  GUARD({
    const mx::array& x = a->a;
    mx::array r = [&]() -> mx::array {
      switch (op) {
        case 0: return mx::abs(x);
        case 1: return mx::negative(x);
        case 2: return mx::exp(x);
        case 3: return mx::log(x);
        case 4: return mx::sqrt(x);
        case 5: return mx::rsqrt(x);
        case 6: return mx::sin(x);
        case 7: return mx::cos(x);
        case 8: return mx::tanh(x);
        case 9: return mx::sigmoid(x);
        case 10: return mx::square(x);
        case 11: return mx::log1p(x);
        case 12: return mx::erf(x);
        case 13: return mx::floor(x);
        case 14: return mx::ceil(x);
        case 15: return mx::round(x);
        case 16: return mx::logical_not(x);
        case 17: return mx::stop_gradient(x);
        case 18: return mx::copy(x);
        case 19: return mx::sign(x);
        case 20: return mx::reciprocal(x);
        case 21: return mx::contiguous(x);
      }
      throw std::invalid_argument("unknown unary op " + std::to_string(op));
    }();
    *out = wrap(std::move(r));
  })
}

int yai_binary(int op, yai_array a, yai_array b, yai_array* out) {
  GUARD({
    const mx::array& x = a->a;
    const mx::array& y = b->a;
    mx::array r = [&]() -> mx::array {
      switch (op) {
        case 0: return mx::add(x, y);
        case 1: return mx::subtract(x, y);
        case 2: return mx::multiply(x, y);
        case 3: return mx::divide(x, y);
        case 4: return mx::power(x, y);
        case 5: return mx::maximum(x, y);
        case 6: return mx::minimum(x, y);
        case 7: return mx::equal(x, y);
        case 8: return mx::not_equal(x, y);
        case 9: return mx::less(x, y);
        case 10: return mx::less_equal(x, y);
        case 11: return mx::greater(x, y);
        case 12: return mx::greater_equal(x, y);
        case 13: return mx::logical_and(x, y);
        case 14: return mx::logical_or(x, y);
        case 15: return mx::matmul(x, y);
        case 16: return mx::remainder(x, y);
        case 17: return mx::floor_divide(x, y);
        case 18: return mx::logaddexp(x, y);
        case 19: return mx::depends({x}, {y})[0];
      }
      throw std::invalid_argument("unknown binary op " + std::to_string(op));
    }();
    *out = wrap(std::move(r));
  })
}

int yai_reduce(int op, yai_array a, const int* axes, int naxes, int all, int keepdims, yai_array* out) {
  GUARD({
    const mx::array& x = a->a;
    std::vector<int> ax = all ? std::vector<int>() : to_ints(axes, naxes);
    if (all) {
      for (int i = 0; i < static_cast<int>(x.ndim()); i++) ax.push_back(i);
    }
    bool k = keepdims != 0;
    mx::array r = [&]() -> mx::array {
      switch (op) {
        case 0: return mx::sum(x, ax, k);
        case 1: return mx::mean(x, ax, k);
        case 2: return mx::max(x, ax, k);
        case 3: return mx::min(x, ax, k);
        case 4: return mx::prod(x, ax, k);
        case 5: return mx::logsumexp(x, ax, k);
        case 6: return mx::all(x, ax, k);
        case 7: return mx::any(x, ax, k);
        case 8: return mx::var(x, ax, k);
      }
      throw std::invalid_argument("unknown reduction " + std::to_string(op));
    }();
    *out = wrap(std::move(r));
  })
}

int yai_full(const int* shape, int ndim, double v, int dtype, yai_array* out) {
  GUARD(*out = wrap(mx::full(to_shape(shape, ndim), mx::array(v, mx::float64 == to_dtype(dtype) ? mx::float64 : mx::float32), to_dtype(dtype))))
}

int yai_arange(double start, double stop, double step, int dtype, yai_array* out) {
  GUARD(*out = wrap(mx::arange(start, stop, step, to_dtype(dtype))))
}

int yai_astype(yai_array a, int dtype, yai_array* out) { GUARD(*out = wrap(mx::astype(a->a, to_dtype(dtype)))) }
int yai_reshape(yai_array a, const int* shape, int ndim, yai_array* out) {
  GUARD(*out = wrap(mx::reshape(a->a, to_shape(shape, ndim))))
}
int yai_transpose(yai_array a, const int* perm, int n, yai_array* out) {
  GUARD(*out = wrap(n < 0 ? mx::transpose(a->a) : mx::transpose(a->a, to_ints(perm, n))))
}
int yai_broadcast_to(yai_array a, const int* shape, int ndim, yai_array* out) {
  GUARD(*out = wrap(mx::broadcast_to(a->a, to_shape(shape, ndim))))
}
int yai_expand_dims(yai_array a, int axis, yai_array* out) { GUARD(*out = wrap(mx::expand_dims(a->a, axis))) }
int yai_squeeze(yai_array a, const int* axes, int naxes, yai_array* out) {
  GUARD(*out = wrap(naxes < 0 ? mx::squeeze(a->a) : mx::squeeze(a->a, to_ints(axes, naxes))))
}
int yai_concatenate(yai_vec v, int axis, yai_array* out) { GUARD(*out = wrap(mx::concatenate(v->v, axis))) }
int yai_stack(yai_vec v, int axis, yai_array* out) { GUARD(*out = wrap(mx::stack(v->v, axis))) }

int yai_split(yai_array a, const int* indices, int n, int sections, int axis, yai_vec* out) {
  GUARD({
    if (sections > 0) {
      *out = wrap_vec(mx::split(a->a, sections, axis));
    } else {
      *out = wrap_vec(mx::split(a->a, to_shape(indices, n), axis));
    }
  })
}

int yai_slice(yai_array a, const int* start, const int* stop, const int* strides, int n, yai_array* out) {
  GUARD(*out = wrap(mx::slice(a->a, to_shape(start, n), to_shape(stop, n), to_shape(strides, n))))
}

int yai_slice_update(yai_array src, yai_array upd, const int* start, const int* stop, const int* strides, int n, yai_array* out) {
  GUARD(*out = wrap(mx::slice_update(src->a, upd->a, to_shape(start, n), to_shape(stop, n), to_shape(strides, n))))
}

int yai_take(yai_array a, yai_array idx, int axis, int has_axis, yai_array* out) {
  GUARD(*out = wrap(has_axis ? mx::take(a->a, idx->a, axis) : mx::take(a->a, idx->a)))
}
int yai_take_along_axis(yai_array a, yai_array idx, int axis, yai_array* out) {
  GUARD(*out = wrap(mx::take_along_axis(a->a, idx->a, axis)))
}
int yai_where(yai_array c, yai_array a, yai_array b, yai_array* out) { GUARD(*out = wrap(mx::where(c->a, a->a, b->a))) }
int yai_softmax(yai_array a, const int* axes, int naxes, int precise, yai_array* out) {
  GUARD(*out = wrap(mx::softmax(a->a, to_ints(axes, naxes), precise != 0)))
}
int yai_argreduce(int op, yai_array a, int axis, int keepdims, yai_array* out) {
  GUARD({
    switch (op) {
      case 0: *out = wrap(mx::argmax(a->a, axis, keepdims != 0)); break;
      case 1: *out = wrap(mx::argmin(a->a, axis, keepdims != 0)); break;
      case 2: *out = wrap(mx::argsort(a->a, axis)); break;
      case 3: *out = wrap(mx::sort(a->a, axis)); break;
      default: throw std::invalid_argument("unknown arg-reduction");
    }
  })
}
int yai_cumsum(yai_array a, int axis, int reverse, int inclusive, yai_array* out) {
  GUARD(*out = wrap(mx::cumsum(a->a, axis, reverse != 0, inclusive != 0)))
}
int yai_clip(yai_array a, yai_array lo, yai_array hi, yai_array* out) { GUARD(*out = wrap(mx::clip(a->a, opt(lo), opt(hi)))) }
int yai_tri(int upper, yai_array a, int k, yai_array* out) { GUARD(*out = wrap(upper ? mx::triu(a->a, k) : mx::tril(a->a, k))) }
int yai_addmm(yai_array c, yai_array a, yai_array b, float alpha, float beta, yai_array* out) {
  GUARD(*out = wrap(mx::addmm(c->a, a->a, b->a, alpha, beta)))
}
int yai_pad(yai_array a, const int* lo, const int* hi, int n, yai_array value, yai_array* out) {
  GUARD({
    std::vector<int> axes;
    for (int i = 0; i < n; i++) axes.push_back(i);
    *out = wrap(mx::pad(a->a, axes, to_shape(lo, n), to_shape(hi, n), value->a));
  })
}
int yai_argpartition(yai_array a, int kth, int axis, yai_array* out) {
  GUARD(*out = wrap(mx::argpartition(a->a, kth, axis)))
}
int yai_flatten(yai_array a, int start_axis, int end_axis, yai_array* out) {
  GUARD(*out = wrap(mx::flatten(a->a, start_axis, end_axis)))
}
int yai_unflatten(yai_array a, int axis, const int* shape, int ndim, yai_array* out) {
  GUARD(*out = wrap(mx::unflatten(a->a, axis, to_shape(shape, ndim))))
}
int yai_swapaxes(yai_array a, int axis1, int axis2, yai_array* out) {
  GUARD(*out = wrap(mx::swapaxes(a->a, axis1, axis2)))
}
int yai_moveaxis(yai_array a, int source, int destination, yai_array* out) {
  GUARD(*out = wrap(mx::moveaxis(a->a, source, destination)))
}
int yai_gather_mm(yai_array a, yai_array b, yai_array lhs_indices, yai_array rhs_indices, int sorted_indices, yai_array* out) {
  GUARD(*out = wrap(mx::gather_mm(a->a, b->a, opt(lhs_indices), opt(rhs_indices), sorted_indices != 0)))
}

int yai_rms_norm(yai_array x, yai_array w, float eps, yai_array* out) {
  GUARD(*out = wrap(mx::fast::rms_norm(x->a, opt(w), eps)))
}
int yai_layer_norm(yai_array x, yai_array w, yai_array b, float eps, yai_array* out) {
  GUARD(*out = wrap(mx::fast::layer_norm(x->a, opt(w), opt(b), eps)))
}
int yai_rope(yai_array x, int dims, int traditional, float base, int has_base, float scale, int offset, yai_array offset_arr, yai_array freqs, yai_array* out) {
  GUARD({
    std::optional<float> b = has_base ? std::optional<float>(base) : std::nullopt;
    if (offset_arr != nullptr) {
      *out = wrap(mx::fast::rope(x->a, dims, traditional != 0, b, scale, offset_arr->a, opt(freqs)));
    } else {
      *out = wrap(mx::fast::rope(x->a, dims, traditional != 0, b, scale, offset, opt(freqs)));
    }
  })
}
int yai_sdpa(yai_array q, yai_array k, yai_array v, float scale, const char* mask_mode, yai_array mask, yai_array* out) {
  GUARD(*out = wrap(mx::fast::scaled_dot_product_attention(q->a, k->a, v->a, scale, mask_mode, opt(mask))))
}

int yai_quantize(yai_array w, int group_size, int bits, const char* mode, yai_vec* out) {
  GUARD(*out = wrap_vec(mx::quantize(w->a, group_size, bits, mode)))
}
int yai_dequantize(yai_array w, yai_array scales, yai_array biases, int group_size, int bits, const char* mode, int dtype, yai_array* out) {
  GUARD({
    std::optional<mx::Dtype> dt = dtype >= 0 ? std::optional<mx::Dtype>(to_dtype(dtype)) : std::nullopt;
    *out = wrap(mx::dequantize(w->a, scales->a, opt(biases), group_size, bits, mode, std::nullopt, dt));
  })
}
int yai_quantized_matmul(yai_array x, yai_array w, yai_array scales, yai_array biases, int transpose, int group_size, int bits, const char* mode, yai_array* out) {
  GUARD(*out = wrap(mx::quantized_matmul(x->a, w->a, scales->a, opt(biases), transpose != 0, group_size, bits, mode)))
}
int yai_gather_qmm(yai_array x, yai_array w, yai_array scales, yai_array biases, yai_array lhs_indices, yai_array rhs_indices, int transpose, int group_size, int bits, const char* mode, int sorted_indices, yai_array* out) {
  GUARD(*out = wrap(mx::gather_qmm(x->a, w->a, scales->a, opt(biases), opt(lhs_indices), opt(rhs_indices), transpose != 0,
                                   group_size, bits, mode, std::nullopt, sorted_indices != 0)))
}

int yai_random_key(uint64_t seed, yai_array* out) { GUARD(*out = wrap(mx::random::key(seed))) }
int yai_random_split(yai_array key, int num, yai_array* out) { GUARD(*out = wrap(mx::random::split(key->a, num))) }
int yai_random_uniform(yai_array lo, yai_array hi, const int* shape, int ndim, int dtype, yai_array key, yai_array* out) {
  GUARD(*out = wrap(mx::random::uniform(lo->a, hi->a, to_shape(shape, ndim), to_dtype(dtype), opt(key))))
}
int yai_random_normal(const int* shape, int ndim, int dtype, float loc, float scale, yai_array key, yai_array* out) {
  GUARD(*out = wrap(mx::random::normal(to_shape(shape, ndim), to_dtype(dtype), loc, scale, opt(key))))
}
int yai_random_bernoulli(yai_array p, const int* shape, int ndim, yai_array key, yai_array* out) {
  GUARD(*out = wrap(mx::random::bernoulli(p->a, to_shape(shape, ndim), opt(key))))
}
int yai_random_categorical(yai_array logits, int axis, yai_array key, yai_array* out) {
  GUARD(*out = wrap(mx::random::categorical(logits->a, axis, opt(key))))
}

int yai_eval(yai_vec v) { GUARD(mx::eval(v->v)) }
int yai_async_eval(yai_vec v) { GUARD(mx::async_eval(v->v)) }

int yai_value_and_grad(uintptr_t fn, yai_vec inputs, const int* argnums, int nargnums, yai_vec* values, yai_vec* grads) {
  GUARD({
    auto vg = mx::value_and_grad(go_function(fn), to_ints(argnums, nargnums));
    auto [vals, gs] = vg(inputs->v);
    *values = wrap_vec(std::move(vals));
    *grads = wrap_vec(std::move(gs));
  })
}

int yai_vjp(uintptr_t fn, yai_vec primals, yai_vec cotangents, yai_vec* outputs, yai_vec* vjps) {
  GUARD({
    auto [outs, vs] = mx::vjp(go_function(fn), primals->v, cotangents->v);
    *outputs = wrap_vec(std::move(outs));
    *vjps = wrap_vec(std::move(vs));
  })
}

int yai_fn_from_go(uintptr_t fn, yai_fn* out) { GUARD(*out = new yai_fn_s{go_function(fn)}) }
int yai_fn_checkpoint(yai_fn f, yai_fn* out) { GUARD(*out = new yai_fn_s{mx::checkpoint(f->f)}) }
// The Go vjp receives primals, cotangents and outputs as one list, in that order.
int yai_fn_custom_vjp(yai_fn f, uintptr_t vjp, yai_fn* out) {
  GUARD({
    auto g = go_function(vjp);
    auto fun_vjp = [g](const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                       const std::vector<mx::array>& outputs) {
      std::vector<mx::array> all;
      all.reserve(primals.size() + cotangents.size() + outputs.size());
      all.insert(all.end(), primals.begin(), primals.end());
      all.insert(all.end(), cotangents.begin(), cotangents.end());
      all.insert(all.end(), outputs.begin(), outputs.end());
      return g(all);
    };
    *out = new yai_fn_s{mx::custom_vjp(f->f, fun_vjp)};
  })
}
int yai_fn_compile(yai_fn f, int shapeless, yai_fn* out) { GUARD(*out = new yai_fn_s{mx::compile(f->f, shapeless != 0)}) }
int yai_fn_call(yai_fn f, yai_vec inputs, yai_vec* outputs) { GUARD(*outputs = wrap_vec(f->f(inputs->v))) }
int yai_fn_free(yai_fn f) { GUARD(delete f) }

// Reading the allocator's counters needs no stream, so it is allowed from any thread: memory
// monitors sample it every step without a round trip to the MLX thread.
int yai_memory(size_t* active, size_t* peak, size_t* cache) {
  GUARD_ANY_THREAD({
    *active = mx::get_active_memory();
    *peak = mx::get_peak_memory();
    *cache = mx::get_cache_memory();
  })
}
int yai_reset_peak_memory(void) { GUARD(mx::reset_peak_memory()) }
int yai_clear_cache(void) { GUARD(mx::clear_cache()) }
int yai_set_memory_limit(size_t limit, size_t* prev) { GUARD(*prev = mx::set_memory_limit(limit)) }
int yai_get_memory_limit(size_t* out) { GUARD(*out = mx::get_memory_limit()) }
int yai_set_cache_limit(size_t limit, size_t* prev) { GUARD(*prev = mx::set_cache_limit(limit)) }
int yai_set_wired_limit(size_t limit, size_t* prev) { GUARD(*prev = mx::set_wired_limit(limit)) }

namespace {
char* pack_strings(const std::vector<std::string>& items, size_t* len) {
  size_t n = 0;
  for (auto& s : items) n += s.size() + 1;
  char* buf = static_cast<char*>(std::malloc(n > 0 ? n : 1));
  size_t off = 0;
  for (auto& s : items) {
    std::memcpy(buf + off, s.c_str(), s.size() + 1);
    off += s.size() + 1;
  }
  *len = n;
  return buf;
}
}  // namespace

int yai_load_safetensors(const char* path, yai_vec* arrays, char** names, size_t* names_len, char** meta, size_t* meta_len, int* nmeta) {
  GUARD({
    auto [tensors, metadata] = mx::load_safetensors(std::string(path));
    std::vector<std::string> ns;
    std::vector<mx::array> as;
    for (auto& [k, v] : tensors) {
      ns.push_back(k);
      as.push_back(v);
    }
    std::vector<std::string> kv;
    for (auto& [k, v] : metadata) {
      kv.push_back(k);
      kv.push_back(v);
    }
    *arrays = wrap_vec(std::move(as));
    *names = pack_strings(ns, names_len);
    *meta = pack_strings(kv, meta_len);
    *nmeta = static_cast<int>(metadata.size());
  })
}

int yai_save_safetensors(const char* path, const char* const* names, yai_vec arrays, const char* const* meta_kv, int nmeta, int* err_no) {
  // MLX reports a failed write without the reason; errno still holds it (ENOSPC, EROFS…).
  errno = 0;
  *err_no = 0;
  GUARD({
    std::unordered_map<std::string, mx::array> tensors;
    for (size_t i = 0; i < arrays->v.size(); i++) tensors.insert({names[i], arrays->v[i]});
    std::unordered_map<std::string, std::string> metadata;
    for (int i = 0; i < nmeta; i++) metadata[meta_kv[2 * i]] = meta_kv[2 * i + 1];
    try {
      mx::save_safetensors(std::string(path), tensors, metadata);
    } catch (...) {
      *err_no = errno;
      throw;
    }
  })
}

int yai_default_device(int* type, int* index) {
  GUARD({
    auto d = mx::default_device();
    *type = d.type == mx::Device::cpu ? 0 : 1;
    *index = d.index;
  })
}
int yai_set_default_device(int type, int index) {
  GUARD(mx::set_default_device(mx::Device(type == 0 ? mx::Device::cpu : mx::Device::gpu, index)))
}
int yai_gpu_available(void) { return mx::is_available(mx::Device::gpu) ? 1 : 0; }
int yai_synchronize(void) { GUARD(mx::synchronize()) }
int yai_device_info(char* name, int name_len, char* arch, int arch_len, int* cc_major, int* cc_minor) {
  GUARD({
    const auto& info = mx::device_info(mx::default_device());
    auto text = [&](const char* key, char* out, int len) {
      out[0] = 0;
      auto it = info.find(key);
      if (it != info.end()) {
        if (auto s = std::get_if<std::string>(&it->second)) {
          std::snprintf(out, len, "%s", s->c_str());
        }
      }
    };
    auto number = [&](const char* key) {
      auto it = info.find(key);
      if (it == info.end()) return 0;
      auto n = std::get_if<size_t>(&it->second);
      return n ? static_cast<int>(*n) : 0;
    };
    text("device_name", name, name_len);
    text("architecture", arch, arch_len);
    *cc_major = number("compute_capability_major");
    *cc_minor = number("compute_capability_minor");
  })
}

namespace {
mx::Device to_device(int type, int index) { return mx::Device(type == 0 ? mx::Device::cpu : mx::Device::gpu, index); }
}  // namespace

int yai_new_stream(int type, int index, int* stream) { GUARD(*stream = mx::new_stream(to_device(type, index)).index) }
int yai_default_stream(int type, int index, int* stream) { GUARD(*stream = mx::default_stream(to_device(type, index)).index) }
int yai_set_default_stream(int type, int index, int stream) {
  GUARD(mx::set_default_stream(mx::Stream(stream, to_device(type, index))))
}

}  // extern "C"
