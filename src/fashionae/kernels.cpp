// fashionae's compiled CPU kernels (built by kernels.py): ReLU + dropout, ReLU + dropout + 2x2
// max-pooling, and ReLU + 2x2 max-pooling, each in one pass over memory forward and one backward;
// and, for inference, a one-channel 3x3 convolution + ReLU + 2x2 max-pooling (conv3x3_relu_pool,
// bf16 or fp32) and a 2x2 transposed convolution of stride 2, with or without the ReLU after it
// (conv_transpose_2x2, fp32): at the end, each saying what it shares with oneDNN's convolution.
// Last, k2's last layer under bf16 autocast, forward and backward (one_channel_forward,
// one_channel_backward): sums in a fixed order that layers.py also computes with PyTorch's ops.
// They compute what dropout.py computes with PyTorch's ops, bit for bit: the same counter masks
// (dropout.splitmix_int15), products rounded the same way, the same maximum (the first in raster
// order; NaN wins, as in ATen's max-pooling), and the same gradients (tests/test_kernels.py), but
// for NaN's payload bits and flushed subnormals (dropout.py says where). bf16 or fp32; NCHW or
// channels-last memory.
#include <ATen/core/Tensor.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <cstring>
#include <tuple>
#include <cmath>
#include <vector>
#if defined(__AVX__)
#include <immintrin.h>
#endif
#if defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define DOT_BF16 1  // the first stage's bf16 kernel by the dot-product instruction
#else
#define DOT_BF16 0
#endif

namespace {

constexpr uint64_t GAMMA = 0x9E3779B97F4A7C15ULL, MIX1 = 0xBF58476D1CE4E5B9ULL, MIX2 = 0x94D049BB133111EBULL;

// The 15-bit uniforms of words [w0, w0 + n), four to a word: SplitMix64's output for state
// key + (w + 1) * GAMMA, each 16-bit quarter's sign bit cleared, in memory order, as
// dropout.splitmix_int15 computes them (its int64 -> int16 view is this memcpy).
inline void splitmix_uniforms(uint64_t key, int64_t w0, int64_t n, int16_t* __restrict out) {
  for (int64_t j = 0; j < n; ++j) {
    uint64_t z = key + (uint64_t)(w0 + j + 1) * GAMMA;
    z ^= z >> 30; z *= MIX1;
    z ^= z >> 27; z *= MIX2;
    z ^= z >> 31;
    z &= 0x7FFF7FFF7FFF7FFFULL;
    std::memcpy(out + 4 * j, &z, 8);
  }
}

inline float bf16_to_float(uint16_t b) {
  uint32_t u = (uint32_t)b << 16; float f; std::memcpy(&f, &u, 4); return f;
}
inline uint16_t float_to_bf16(float f) {  // round to nearest even, as c10::BFloat16
  if (std::isnan(f)) return 0x7FC0;
  uint32_t u; std::memcpy(&u, &f, 4);
  return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

template <typename T> struct Num;
template <> struct Num<uint16_t> {  // bf16
  using I = int16_t;
  static float get(uint16_t v) { return bf16_to_float(v); }
  static uint16_t put(float f) { return float_to_bf16(f); }
  static I bits(uint16_t v) { return (I)v; }
};
template <> struct Num<float> {
  using I = int32_t;
  static float get(float v) { return v; }
  static float put(float f) { return f; }
  static I bits(float v) { I i; std::memcpy(&i, &v, 4); return i; }
};

// The rule every kernel applies, in one place. One element of ReLU + dropout: x * (kept and x > 0 ?
// scale : 0), rounded to T (u: its 15-bit uniform, kept where u > thr).
template <typename T>
inline T relu_dropout_one(T v, int16_t u, int16_t thr, float scale) {
  bool keep = u > thr && Num<T>::bits(v) > 0;
  return Num<T>::put(Num<T>::get(v) * (keep ? scale : 0.0f));
}

// Its gradient, from the output alone: the mask is scale exactly where the output is > 0.
template <typename T>
inline T relu_dropout_grad(float g, T out, float scale) {
  return Num<T>::put(g * (Num<T>::bits(out) > 0 ? scale : 0.0f));
}

// Each kernel's loop body is a function of its own, called with values: inside an OpenMP region
// the lambda's captures are reached through a pointer that may alias the output, and gcc does
// not vectorize the loop (40x slower).

// ReLU + dropout, element k of x's memory using the k-th 15-bit uniform
template <typename T>
void relu_dropout_block(const T* __restrict x, T* __restrict y, int64_t m, const int16_t* __restrict u,
                        int16_t thr, float scale) {
  for (int64_t i = 0; i < m; ++i) y[i] = relu_dropout_one<T>(x[i], u[i], thr, scale);
}

template <typename T>
void relu_dropout_kernel(const T* x, T* y, int64_t n, uint64_t key, int16_t thr, float scale) {
  constexpr int64_t BLOCK = 4096;  // elements; a multiple of 4, so blocks start on a word
  at::parallel_for(0, (n + BLOCK - 1) / BLOCK, 1, [=](int64_t b0, int64_t b1) {
    std::vector<int16_t> u(BLOCK);
    for (int64_t b = b0; b < b1; ++b) {
      int64_t k0 = b * BLOCK, m = std::min(BLOCK, n - k0);
      splitmix_uniforms(key, k0 / 4, (m + 3) / 4, u.data());
      relu_dropout_block<T>(x + k0, y + k0, m, u.data(), thr, scale);
    }
  });
}

template <typename T>
void relu_dropout_backward_block(const T* __restrict dy, const T* __restrict y, T* __restrict dx, int64_t m,
                                 float scale) {
  for (int64_t k = 0; k < m; ++k) dx[k] = relu_dropout_grad<T>(Num<T>::get(dy[k]), y[k], scale);
}

template <typename T>
void relu_dropout_backward_kernel(const T* dy, const T* y, T* dx, int64_t n, float scale) {
  at::parallel_for(0, n, 16384, [=](int64_t k0, int64_t k1) {
    relu_dropout_backward_block<T>(dy + k0, y + k0, dx + k0, k1 - k0, scale);
  });
}

// Pooling works on memory as row pairs: pair p spans input [p * 2 * rowlen, (p + 1) * 2 * rowlen)
// and output [p * rowlen / 2, ...); within a row, element (w, c) is at w * cs + c (cs = C
// channels-last, 1 for NCHW, where each (n, c) has its own pairs). A pair's two rows are first
// made floats (ReLU'd, dropped out) in yv, a loop that vectorizes; then pooled.

// The first maximum of each window in raster order (NaN wins, as in ATen's max-pooling), and its
// position 0-3 (dy * 2 + dx) where IDX.
template <typename T, bool IDX>
void pool_pair(const float* __restrict yv, T* __restrict op, uint8_t* __restrict ip, int64_t W, int64_t cs) {
  const int64_t rowlen = W * cs, OW = W / 2;
  for (int64_t ow = 0; ow < OW; ++ow)
    for (int64_t c = 0; c < cs; ++c) {
      float best = -INFINITY; uint8_t at = 0;
      for (int dy = 0; dy < 2; ++dy)
        for (int dx = 0; dx < 2; ++dx) {
          float v = yv[dy * rowlen + (2 * ow + dx) * cs + c];
          if (v > best || std::isnan(v)) { best = v; at = (uint8_t)(dy * 2 + dx); }
        }
      op[ow * cs + c] = Num<T>::put(best);
      if (IDX) ip[ow * cs + c] = at;
    }
}

// ReLU + dropout of a pair's rows, as floats
template <typename T>
void relu_dropout_rows(const T* __restrict xp, const int16_t* __restrict u, float* __restrict yv, int64_t n,
                       int16_t thr, float scale) {
  for (int64_t i = 0; i < n; ++i) yv[i] = Num<T>::get(relu_dropout_one<T>(xp[i], u[i], thr, scale));
}

// relu as torch's: x < 0 -> +0; -0 and NaN kept (a bf16 NaN comes out as the canonical one, as
// from torch's bf16 relu)
template <typename T>
void relu_rows(const T* __restrict xp, float* __restrict yv, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float v = Num<T>::get(xp[i]);
    yv[i] = v < 0.0f ? 0.0f : v;
  }
}

template <typename T>
void relu_dropout_pool_kernel(const T* x, T* out, uint8_t* idx, int64_t pairs, int64_t W, int64_t cs,
                              uint64_t key, int16_t thr, float scale) {
  const int64_t rowlen = W * cs, OW = W / 2;
  at::parallel_for(0, pairs, 1, [=](int64_t p0, int64_t p1) {
    std::vector<int16_t> u(2 * rowlen);
    std::vector<float> yv(2 * rowlen);
    for (int64_t p = p0; p < p1; ++p) {
      splitmix_uniforms(key, p * 2 * rowlen / 4, 2 * rowlen / 4, u.data());
      relu_dropout_rows<T>(x + p * 2 * rowlen, u.data(), yv.data(),
                           2 * rowlen, thr, scale);
      pool_pair<T, true>(yv.data(), out + p * OW * cs, idx + p * OW * cs, W, cs);
    }
  });
}

template <typename T>
void relu_pool_kernel(const T* x, T* out, uint8_t* idx, int64_t pairs, int64_t W, int64_t cs) {
  const int64_t rowlen = W * cs, OW = W / 2;
  at::parallel_for(0, pairs, 1, [=](int64_t p0, int64_t p1) {
    std::vector<float> yv(2 * rowlen);
    for (int64_t p = p0; p < p1; ++p) {
      relu_rows<T>(x + p * 2 * rowlen, yv.data(), 2 * rowlen);
      if (idx) pool_pair<T, true>(yv.data(), out + p * OW * cs, idx + p * OW * cs, W, cs);
      else pool_pair<T, false>(yv.data(), out + p * OW * cs, nullptr, W, cs);
    }
  });
}

// The input's gradient: at each window's maximum, the output's gradient through the mask there
// (DROPOUT: times 1 / (1 - p) where the output is > 0, else times 0, as x * mask's gradient is;
// else ReLU's: itself unless the output is <= 0, then +0, as torch's threshold_backward); 0 elsewhere.
// The gradient is first added to 0, as ATen's pooling backward adds it into zeros (-0 becomes +0).
template <typename T, bool DROPOUT>
void pool_backward_pair(const T* __restrict go, const T* __restrict o, const uint8_t* __restrict ip,
                        T* __restrict dp, T* __restrict g, int64_t W, int64_t cs, float scale) {
  const int64_t rowlen = W * cs, OW = W / 2;
  for (int64_t j = 0; j < OW * cs; ++j)
    g[j] = DROPOUT ? relu_dropout_grad<T>(Num<T>::get(go[j]) + 0.0f, o[j], scale)
                   : (Num<T>::get(o[j]) <= 0.0f ? T(0) : Num<T>::put(Num<T>::get(go[j]) + 0.0f));
  for (int64_t dy = 0; dy < 2; ++dy)  // every input written once, in memory order
    for (int64_t w = 0; w < W; ++w) {
      const uint8_t at = (uint8_t)(dy * 2 + (w & 1));
      const T* gw = g + (w / 2) * cs; const uint8_t* iw = ip + (w / 2) * cs;
      T* d = dp + dy * rowlen + w * cs;
      for (int64_t c = 0; c < cs; ++c) d[c] = iw[c] == at ? gw[c] : T(0);
    }
}

template <typename T, bool DROPOUT>
void pool_backward_kernel(const T* dout, const T* out, const uint8_t* idx, T* dx, int64_t pairs, int64_t W,
                          int64_t cs, float scale) {
  const int64_t rowlen = W * cs, OW = W / 2;
  at::parallel_for(0, pairs, 1, [=](int64_t p0, int64_t p1) {
    std::vector<T> g(OW * cs);
    for (int64_t p = p0; p < p1; ++p)
      pool_backward_pair<T, DROPOUT>(dout + p * OW * cs, out + p * OW * cs, idx + p * OW * cs,
                                     dx + p * 2 * rowlen, g.data(), W, cs, scale);
  });
}

template <typename F> void dispatch(const at::Tensor& t, F f) {
  if (t.scalar_type() == at::kBFloat16) f(uint16_t{});
  else if (t.scalar_type() == at::kFloat) f(float{});
  else TORCH_CHECK(false, "fashionae kernels: bf16 or fp32 only");
}

bool channels_last(const at::Tensor& x) { return !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast); }

at::Tensor relu_dropout(const at::Tensor& x, int64_t key, int64_t thr, double scale) {
  // element k of x's memory takes the k-th uniform, whatever the layout
  TORCH_CHECK(x.device().is_cpu() && x.is_non_overlapping_and_dense(), "relu_dropout: x must be dense");
  auto y = at::empty_like(x);
  dispatch(x, [&](auto z) { using T = decltype(z);
    relu_dropout_kernel<T>((const T*)x.data_ptr(), (T*)y.data_ptr(), x.numel(), (uint64_t)key, (int16_t)thr,
                           (float)scale); });
  return y;
}

at::Tensor relu_dropout_backward(const at::Tensor& dy, const at::Tensor& y, double scale) {
  TORCH_CHECK(dy.strides() == y.strides() && dy.scalar_type() == y.scalar_type(),
              "relu_dropout_backward: dy unlike y");
  auto dx = at::empty_like(y);
  dispatch(y, [&](auto z) { using T = decltype(z);
    relu_dropout_backward_kernel<T>((const T*)dy.data_ptr(), (const T*)y.data_ptr(), (T*)dx.data_ptr(), y.numel(),
                                    (float)scale); });
  return dx;
}

// A 2x2 pooling, from its input (times 1) or its output (times 2): the input's sizes, its layout
// and its row pairs.
struct Pooling {
  at::MemoryFormat format; int64_t N, C, H, W, cs, pairs;
  Pooling(const at::Tensor& t, int64_t times, const char* op) {
    TORCH_CHECK(t.device().is_cpu() && t.dim() == 4 && t.size(2) * times % 2 == 0 && t.size(3) * times % 2 == 0,
                op, ": x must be N C H W on the CPU, H and W even");
    bool cl = channels_last(t);
    TORCH_CHECK(cl || t.is_contiguous(), op, ": x must be contiguous or channels-last");
    format = cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    N = t.size(0); C = t.size(1); H = t.size(2) * times; W = t.size(3) * times;
    cs = cl ? C : 1; pairs = cl ? N * H / 2 : N * C * H / 2;
  }
  at::Tensor input(const at::Tensor& like) const {
    return at::empty({N, C, H, W}, like.options().memory_format(format));
  }
  at::Tensor pooled(const at::Tensor& like, at::ScalarType dtype) const {
    return at::empty({N, C, H / 2, W / 2}, like.options().dtype(dtype).memory_format(format));
  }
};

std::tuple<at::Tensor, at::Tensor> relu_dropout_pool(const at::Tensor& x, int64_t key, int64_t thr, double scale) {
  Pooling s(x, 1, "relu_dropout_pool");
  auto out = s.pooled(x, x.scalar_type()), idx = s.pooled(x, at::kByte);
  dispatch(x, [&](auto z) { using T = decltype(z);
    relu_dropout_pool_kernel<T>((const T*)x.data_ptr(), (T*)out.data_ptr(), idx.data_ptr<uint8_t>(), s.pairs, s.W,
                                s.cs, (uint64_t)key, (int16_t)thr, (float)scale); });
  return {out, idx};
}

std::tuple<at::Tensor, at::Tensor> relu_pool(const at::Tensor& x, bool indices) {
  Pooling s(x, 1, "relu_pool");
  auto out = s.pooled(x, x.scalar_type());
  auto idx = indices ? s.pooled(x, at::kByte) : at::empty({0}, x.options().dtype(at::kByte));
  dispatch(x, [&](auto z) { using T = decltype(z);
    relu_pool_kernel<T>((const T*)x.data_ptr(), (T*)out.data_ptr(), indices ? idx.data_ptr<uint8_t>() : nullptr,
                        s.pairs, s.W, s.cs); });
  return {out, idx};
}

template <bool DROPOUT>
at::Tensor pool_backward(const at::Tensor& dout, const at::Tensor& out, const at::Tensor& idx, double scale) {
  TORCH_CHECK(dout.strides() == out.strides() && dout.scalar_type() == out.scalar_type() &&
              idx.strides() == out.strides() && idx.scalar_type() == at::kByte, "pool backward: dout or idx unlike out");
  Pooling s(out, 2, "pool backward");
  auto dx = s.input(out);
  dispatch(out, [&](auto z) { using T = decltype(z);
    pool_backward_kernel<T, DROPOUT>((const T*)dout.data_ptr(), (const T*)out.data_ptr(), idx.data_ptr<uint8_t>(),
                                     (T*)dx.data_ptr(), s.pairs, s.W, s.cs, (float)scale); });
  return dx;
}

at::Tensor relu_dropout_pool_backward(const at::Tensor& dout, const at::Tensor& out, const at::Tensor& idx,
                                      double scale) {
  return pool_backward<true>(dout, out, idx, scale);
}

at::Tensor relu_pool_backward(const at::Tensor& dout, const at::Tensor& out, const at::Tensor& idx) {
  return pool_backward<false>(dout, out, idx, 1.0);
}

typedef float f32x8 __attribute__((vector_size(32)));

inline f32x8 splat(float r) { return f32x8{r, r, r, r, r, r, r, r}; }  // (0 + r would make -0 +0)

// a * b + c rounded once (a fused multiply-add), lane by lane: what oneDNN's fp32 kernels compute
inline f32x8 fused_multiply_add(f32x8 a, f32x8 b, f32x8 c) {
#if defined(__FMA__)
  return (f32x8)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  for (int i = 0; i < 8; ++i) c[i] = std::fma(a[i], b[i], c[i]);
  return c;
#endif
}

// The paper encoder's first stage in inference, in one pass: a 3x3 convolution (stride 1, padding
// 1, bias) of one-channel images, ReLU and 2x2 max-pooling, without writing the convolution's
// output (25 MB in fp32 for 250 images, read back by the pooling). It computes what oneDNN's
// convolution, torch's ReLU and relu_pool compute, in one of two precisions:
// - under bf16 autocast (BF16): images, weights and bias rounded to bf16; each output's nine
//   products (exact in fp32: 8-bit significands) summed in fp32 from +0 in oneDNN's order there
//   (TAPS), the bias added last; rounded to bf16 once, after ReLU and pooling. Rounding is
//   monotone, so taking ReLU and the maximum before it changes nothing but the sign of a zero from
//   a negative sum below bf16's smallest subnormal. On AVX-512-BF16 in channels-last memory (the
//   trainer's layout) that is oneDNN's result bit for bit (a Zen 5: 63 million outputs of a
//   trained model); where oneDNN runs other code (NCHW, or capped to AVX2), 10 to 18 of those
//   63 million differed by their last bit, at a rounding tie (on an AMX Xeon, 5 in either layout).
//   Where the CPU has AVX-512-BF16 the kernel sums by its dot-product instruction, as oneDNN does
//   (conv3x3_relu_pool_row_dot: the same sums, subnormals flushed as oneDNN flushes them; 1.8x as
//   fast as the fp32 sums on a Zen 4), elsewhere by fp32 multiply-adds (conv3x3_relu_pool_row).
// - in fp32: the nine taps in raster order by fused multiply-adds, from +0 with the bias added
//   last in channels-last memory (oneDNN's brgemm kernel there), from the bias in NCHW (its direct
//   kernel): oneDNN's orders on an AVX2 EPYC, where no output of a trained model differs (on an
//   AMX Xeon oneDNN's AVX-512 kernels sum otherwise: 16-25 % of them differ in their last bits). oneDNN
//   skips the padding's products where the kernel adds them as zeros: the same sums, but for the
//   sign of a zero where the bias is -0.
// Then ReLU and the window's first maximum (NaN wins). tests/test_kernels.py checks oneDNN on its
// machine to the last bit.
typedef float f32x16 __attribute__((vector_size(64)));     // 16 channels at once: the compiler splits
typedef uint32_t u32x16 __attribute__((vector_size(64)));  // it into what the CPU's vectors hold

// The order of the nine products (ky * 3 + kx) in bf16: oneDNN's on AVX-512-BF16, column by
// column, in pairs of which its dot-product instruction (vdpbf16ps) adds the second first.
constexpr int TAPS[9] = {3, 0, 1, 6, 7, 4, 5, 2, 8};
// TAPS two at a time, as vdpbf16ps takes them: {the high half's tap, added first; the low half's}
// (the ninth with none: a zero product, added first)
constexpr int PAIRS[5][2] = {{TAPS[0], TAPS[1]}, {TAPS[2], TAPS[3]}, {TAPS[4], TAPS[5]}, {TAPS[6], TAPS[7]}, {-1, TAPS[8]}};

// One pooled row: rows4 = the four padded input rows it reads (W + 2 floats each); wt = the
// weights as [9 taps][C channels], bias [C]; out[W / 2][C] (bf16 bits or fp32), C a multiple of 16.
// bf16: 16 channels at once; fp32: 8, so that the nine weights stay in AVX2's registers.
template <bool BF16>
void conv3x3_relu_pool_row(const float* __restrict rows4, int64_t W, int64_t C, const float* __restrict wt,
                           const float* __restrict bias, std::conditional_t<BF16, uint16_t, float>* __restrict out,
                           bool bias_first) {
  using V = std::conditional_t<BF16, f32x16, f32x8>;
  constexpr int L = sizeof(V) / 4;
  const int64_t P = W + 2;
  for (int64_t c0 = 0; c0 < C; c0 += L) {
    V w[9];  // in registers for the whole row
    for (int k = 0; k < 9; ++k) std::memcpy(&w[k], wt + k * C + c0, sizeof(V));
    V b;
    std::memcpy(&b, bias + c0, sizeof(V));
    for (int64_t ow = 0; ow < W / 2; ++ow) {
      const float* at = rows4 + 2 * ow;  // the window's input pixel q = dy * 2 + dx is at[(q / 2) * P + q % 2]
      V sums[4];
      if constexpr (BF16) {
        for (int q = 0; q < 4; ++q) {
          V sum = {};
          for (int t : TAPS) sum += at[(q / 2 + t / 3) * P + q % 2 + t % 3] * w[t];  // exact products: nothing to fuse
          sums[q] = sum + b;
        }
      } else {  // tap by tap, the four sums' fused multiply-adds in turn: four chains that overlap (1.5x as fast)
        for (int q = 0; q < 4; ++q) sums[q] = bias_first ? b : V{};
        for (int t = 0; t < 9; ++t)
          for (int q = 0; q < 4; ++q) sums[q] = fused_multiply_add(splat(at[(q / 2 + t / 3) * P + q % 2 + t % 3]), w[t], sums[q]);
        if (!bias_first)
          for (int q = 0; q < 4; ++q) sums[q] += b;
      }
      V best = V{} - INFINITY;
      for (int q = 0; q < 4; ++q) {
        const V v = sums[q] < 0.0f ? V{} : sums[q];  // ReLU (relu_rows' rule)
        best = (v > best) | (v != v) ? v : best;      // pool_pair's rule
      }
      if constexpr (BF16) {
        u32x16 u = (u32x16)best, h = (u + 0x7FFF + ((u >> 16) & 1)) >> 16;  // float_to_bf16, 16 at once
        h = (u & 0x7FFFFFFF) > 0x7F800000 ? u32x16{} + 0x7FC0 : h;
        for (int c = 0; c < 16; ++c) out[ow * C + c0 + c] = (uint16_t)h[c];
      } else {
        std::memcpy(out + ow * C + c0, &best, sizeof(V));
      }
    }
  }
}

#if DOT_BF16
// float_to_bf16 of 16 fp32 values' bits at once
inline __m256i bf16_bits(__m512i u) {
  const __m512i h = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)),
                                                       _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)),
                                                _mm512_set1_epi32(0x7F800000));
  return _mm256_mask_blend_epi16(nan, _mm512_cvtepi32_epi16(h), _mm256_set1_epi16(0x7FC0));
}

// Subnormal results of this thread's float arithmetic flushed to zero (MXCSR's FTZ) while it lasts
struct FlushToZero {
  const unsigned int csr = _mm_getcsr();
  explicit FlushToZero(bool on) { if (on) _mm_setcsr(csr | _MM_FLUSH_ZERO_ON); }
  ~FlushToZero() { _mm_setcsr(csr); }
};

// One row of n values as bf16 bits (float_to_bf16's)
template <typename T>
inline void row_bf16_bits(const T* __restrict in, int64_t n, uint16_t* __restrict out) {
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t x = 0; x < n; x += 16) {
      const __mmask16 m = n - x >= 16 ? 0xFFFF : (1u << (n - x)) - 1;
      _mm256_mask_storeu_epi16(out + x, m, bf16_bits(_mm512_castps_si512(_mm512_maskz_loadu_ps(m, in + x))));
    }
  } else {
    for (int64_t x = 0; x < n; ++x) out[x] = float_to_bf16(Num<T>::get(in[x]));
  }
}

// The bf16 row by AVX-512-BF16's dot-product instruction, as oneDNN computes it there: each
// vdpbf16ps adds to 16 channels' sums the products of a pair of taps (PAIRS), so the sums run in
// TAPS' order (the ninth tap's pair adds a zero first: +0 + a sum from +0 is the sum): the row
// above's sums in 5 instructions a window where it takes 9, but for subnormals, which the
// instruction flushes to zero (each of its additions' results), as oneDNN's convolution does; the
// caller flushes the bias's sums (FTZ), as oneDNN flushes its outputs. rows4: the four padded rows
// as bf16 bits (W + 2 each); wpairs: [5 pairs][C channels], the bits of each pair's weights (as
// PAIRS: the first in the high half); bias: finite (the caller's check); pixels: room for [5
// pairs][2 rows][W] pairs of pixels. NB blocks of 16 channels and two pooled outputs at once: 8 NB
// sums in flight, since each instruction waits for the one before.
template <int NB>
void conv3x3_relu_pool_row_dot(const uint16_t* __restrict rows4, int64_t W, int64_t C,
                               const uint32_t* __restrict wpairs, const float* __restrict bias,
                               uint16_t* __restrict out, uint32_t* __restrict pixels) {
  TORCH_CHECK(C % (16 * NB) == 0, "conv3x3_relu_pool_row_dot: C must be a multiple of ", 16 * NB);
  const int64_t P = W + 2;
  for (int k = 0; k < 5; ++k) {  // each conv pixel's pairs of inputs, laid out for broadcasts
    const int high = PAIRS[k][0], low = PAIRS[k][1];
    for (int dy = 0; dy < 2; ++dy) {
      const uint16_t* a = rows4 + (dy + low / 3) * P + low % 3;
      const uint16_t* b = high < 0 ? nullptr : rows4 + (dy + high / 3) * P + high % 3;
      uint32_t* d = pixels + (k * 2 + dy) * W;
      for (int64_t x = 0; x < W; x += 16) {  // d[x] = a[x] | b[x] << 16, 16 at once
        const __mmask16 m = W - x >= 16 ? 0xFFFF : (1u << (W - x)) - 1;
        __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, a + x));
        if (b) v = _mm512_or_si512(v, _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, b + x)), 16));
        _mm512_mask_storeu_epi32(d + x, m, v);
      }
    }
  }
  for (int64_t c0 = 0; c0 < C; c0 += 16 * NB) {
    __m512bh w[5][NB];
    __m512 b[NB];
    for (int j = 0; j < NB; ++j) {
      for (int k = 0; k < 5; ++k) w[k][j] = (__m512bh)_mm512_loadu_si512(wpairs + k * C + c0 + 16 * j);
      b[j] = _mm512_loadu_ps(bias + c0 + 16 * j);
    }
    auto windows = [&](int64_t ow, auto count) {  // pooled outputs ow ... ow + count - 1
      constexpr int NW = decltype(count)::value;
      __m512 sum[NW][4][NB];
      for (int i = 0; i < NW; ++i)
        for (int q = 0; q < 4; ++q)
          for (int j = 0; j < NB; ++j) sum[i][q][j] = _mm512_setzero_ps();
      for (int k = 0; k < 5; ++k)
        for (int i = 0; i < NW; ++i)
          for (int q = 0; q < 4; ++q) {  // the window's pixel q = dy * 2 + dx
            const __m512bh p = (__m512bh)_mm512_set1_epi32((int)pixels[(k * 2 + q / 2) * W + 2 * (ow + i) + q % 2]);
            for (int j = 0; j < NB; ++j) sum[i][q][j] = _mm512_dpbf16_ps(sum[i][q][j], p, w[k][j]);
          }
      // Pooling first: adding the (finite) bias, rounding and flushing are monotone, so the
      // window's largest sum gives its largest output (a -0 the ReLU makes +0); a NaN among the
      // sums makes the output NaN
      for (int i = 0; i < NW; ++i)
        for (int j = 0; j < NB; ++j) {
          const __m512* v = sum[i][0] + j;  // v[q * NB]: the window's sums
          const __mmask16 nan = _mm512_cmp_ps_mask(v[0], v[NB], _CMP_UNORD_Q) |
                                _mm512_cmp_ps_mask(v[2 * NB], v[3 * NB], _CMP_UNORD_Q);
          const __m512 largest = _mm512_max_ps(_mm512_max_ps(v[0], v[NB]), _mm512_max_ps(v[2 * NB], v[3 * NB]));
          const __m512 relu = _mm512_max_ps(_mm512_add_ps(largest, b[j]), _mm512_setzero_ps());  // ReLU: +0 below, and for -0
          _mm256_storeu_si256((__m256i*)(out + (ow + i) * C + c0 + 16 * j),
                              bf16_bits(_mm512_castps_si512(_mm512_mask_blend_ps(nan, relu, _mm512_set1_ps(NAN)))));
        }
    };
    int64_t ow = 0;
    for (; ow + 2 <= W / 2; ow += 2) windows(ow, std::integral_constant<int, 2>{});
    if (ow < W / 2) windows(ow, std::integral_constant<int, 1>{});
  }
}
#endif

template <typename T, bool BF16, typename O = std::conditional_t<BF16, uint16_t, float>>
void conv3x3_relu_pool_kernel(const T* x, const float* wt, const float* bias, O* out, int64_t N, int64_t C,
                              int64_t H, int64_t W, bool channels_last) {
  const int64_t P = W + 2, OH = H / 2, OW = W / 2;
  // by conv3x3_relu_pool_row_dot, with a finite bias (in bf16: 3.4e38 rounds to infinity, whose
  // sum with an infinite one the other way is NaN; rare enough for the row above)
  const bool dot = BF16 && DOT_BF16 && std::all_of(bias, bias + C, [](float b) { return std::isfinite(b); });
  std::vector<uint32_t> wpairs(dot ? 5 * C : 0);  // [pair][channel]: the pair's weights as bf16 bits
  for (int k = 0; dot && k < 5; ++k)
    for (int64_t c = 0; c < C; ++c)
      wpairs[k * C + c] = (k < 4 ? (uint32_t)float_to_bf16(wt[PAIRS[k][0] * C + c]) << 16 : 0u) |
                          float_to_bf16(wt[PAIRS[k][1] * C + c]);
  at::parallel_for(0, N * OH, 1, [=, &wpairs](int64_t r0, int64_t r1) {
#if DOT_BF16
    const FlushToZero flush(dot);  // oneDNN's outputs' flush, in this thread while it lasts
#endif
    std::vector<float> rows4(dot ? 0 : 4 * P);
    std::vector<uint16_t> rows4_bf16(dot ? 4 * P : 0);
    std::vector<uint32_t> pixels(dot ? 10 * W : 0);
    std::vector<O> row(channels_last ? 0 : OW * C);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / OH, oh = r % OH;
      for (int i = 0; i < 4; ++i) {  // input rows 2 oh - 1 ... 2 oh + 2, zero-padded (rounded to bf16)
        const int64_t y = 2 * oh - 1 + i;
        const bool inside = y >= 0 && y < H;
#if DOT_BF16
        if (dot) {  // as bf16 bits
          uint16_t* p = rows4_bf16.data() + i * P;
          std::fill(p, p + P, 0);
          if (inside) row_bf16_bits(x + (n * H + y) * W, W, p + 1);
          continue;
        }
#endif
        float* p = rows4.data() + i * P;
        p[0] = p[P - 1] = 0.0f;
        for (int64_t j = 0; j < W; ++j) {
          const float v = inside ? Num<T>::get(x[(n * H + y) * W + j]) : 0.0f;
          p[j + 1] = BF16 ? bf16_to_float(float_to_bf16(v)) : v;
        }
      }
      O* o = channels_last ? out + r * OW * C : row.data();
#if DOT_BF16
      if constexpr (BF16) {  // (dot is false for fp32 outputs)
        if (dot && C % 32 == 0) conv3x3_relu_pool_row_dot<2>(rows4_bf16.data(), W, C, wpairs.data(), bias, o, pixels.data());
        else if (dot) conv3x3_relu_pool_row_dot<1>(rows4_bf16.data(), W, C, wpairs.data(), bias, o, pixels.data());
      }
      if (!dot)
#endif
      conv3x3_relu_pool_row<BF16>(rows4.data(), W, C, wt, bias, o, !channels_last);
      if (!channels_last)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t j = 0; j < OW; ++j) out[((n * C + c) * OH + oh) * OW + j] = o[j * C + c];
    }
  });
}

// oneDNN's rule for a convolution's output, which the convolution kernels' outputs follow:
// channels-last when the input or the weight suggests it (ReLU and pooling keep it).
bool onednn_channels_last(const at::Tensor& x, const at::Tensor& weight) {
  return x.suggest_memory_format() == at::MemoryFormat::ChannelsLast ||
         weight.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
}

// Laid out as the stock path lays it (onednn_channels_last). bf16: under autocast.
at::Tensor conv3x3_relu_pool(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool bf16) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 4 && x.size(1) == 1 && x.size(2) % 2 == 0 && x.size(3) % 2 == 0,
              "conv3x3_relu_pool: x must be N 1 H W on the CPU, H and W even");
  TORCH_CHECK(weight.dim() == 4 && weight.size(1) == 1 && weight.size(2) == 3 && weight.size(3) == 3 &&
              weight.size(0) % 16 == 0 && bias.dim() == 1 && bias.size(0) == weight.size(0) &&
              weight.scalar_type() == at::kFloat && bias.scalar_type() == at::kFloat,
              "conv3x3_relu_pool: weight must be fp32 C 1 3 3 with C a multiple of 16, bias C");
  const int64_t N = x.size(0), C = weight.size(0), H = x.size(2), W = x.size(3);
  const bool cl = onednn_channels_last(x, weight);
  auto xc = x.contiguous();
  auto w = weight.contiguous(), b = bias.contiguous();
  if (bf16) w = w.to(at::kBFloat16).to(at::kFloat), b = b.to(at::kBFloat16).to(at::kFloat);
  std::vector<float> wt(9 * C);  // [tap][channel]
  for (int64_t c = 0; c < C; ++c)
    for (int k = 0; k < 9; ++k) wt[k * C + c] = w.data_ptr<float>()[c * 9 + k];
  auto out = at::empty({N, C, H / 2, W / 2}, x.options().dtype(bf16 ? at::kBFloat16 : at::kFloat).memory_format(
      cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
  dispatch(xc, [&](auto z) { using T = decltype(z);
    if (bf16) conv3x3_relu_pool_kernel<T, true>((const T*)xc.data_ptr(), wt.data(), b.data_ptr<float>(),
                                                (uint16_t*)out.data_ptr(), N, C, H, W, cl);
    else conv3x3_relu_pool_kernel<T, false>((const T*)xc.data_ptr(), wt.data(), b.data_ptr<float>(),
                                            out.data_ptr<float>(), N, C, H, W, cl); });
  return out;
}

// The author's decoder's layers in fp32 inference (k2): a 2x2 transposed convolution of stride 2,
// then ReLU where relu. Each input pixel's C values make a 2x2 block of output pixels of its own:
// out[t][o] = the sum over c of x[c] * w[c][o][t] (t = ky * 2 + kx) by fused multiply-adds from +0
// in c's order, the bias added last; ReLU as torch's (x < 0 -> +0, NaN kept). That is oneDNN's
// order for both of the paper decoder's layers on an AVX2 EPYC (its brgemm kernel, either layout;
// tests/test_kernels.py checks oneDNN on its machine to the last bit), where oneDNN pads one
// output channel to 8 and takes about 8x as long as this kernel, and runs the 64 -> 32 layer
// with its ReLU at about half the fp32 peak.

// Into one channel: two pixels of an input row (or one: two = false), whose four outputs each
// fill a vector of 8. a0, a1: the pixels' first channel; cs: from one channel to the next in the
// input; wt: [C][8] = the weights' four taps, twice; out: the first pixel's first output; ow: the
// output row's length.
inline void conv_transpose_2x2_pair(const float* __restrict a0, const float* __restrict a1, int64_t cs, int64_t C,
                                    const float* __restrict wt, float b, bool relu, float* __restrict out, int64_t ow,
                                    bool two) {
  f32x8 acc = {};
  for (int64_t c = 0; c < C; ++c) {
    const float u = a0[c * cs], v = a1[c * cs];
    f32x8 w;
    std::memcpy(&w, wt + 8 * c, sizeof w);
    acc = fused_multiply_add(f32x8{u, u, u, u, v, v, v, v}, w, acc);
  }
  acc += b;
  if (relu) acc = acc < 0.0f ? f32x8{} : acc;
  for (int p = 0; p < (two ? 2 : 1); ++p)
    for (int t = 0; t < 4; ++t) out[(t / 2) * ow + 2 * p + t % 2] = acc[4 * p + t];
}

// Into O channels, O a multiple of 8: P pixels at once (px: each one's first channel; cs: from one
// channel to the next in the input) times V vectors of 8 of the 4 * O outputs (k0 ... k0 + 8 V - 1
// of [t][o]): P x V sums in registers, each weight loaded for a channel serving P pixels.
// wt: [C][4 O]; bias: [4 O] (each tap's O biases); out: where each pixel's output k goes, by the
// pixel's base offset (base) and the output's (at: [4 O]); step: from one channel to the next in
// the output.
template <int P, int V>
inline void conv_transpose_2x2_tile(const float* const* px, int64_t cs, int64_t C, const float* __restrict wt,
                                    const float* __restrict bias, int64_t K, int64_t k0, bool relu,
                                    float* __restrict out, const int64_t* base, const int64_t* at, int64_t step) {
  f32x8 acc[P][V] = {};
  for (int64_t c = 0; c < C; ++c) {
    f32x8 w[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) std::memcpy(&w[v], wt + c * K + k0 + 8 * v, sizeof(f32x8));
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) {
      const f32x8 a = splat(px[p][c * cs]);
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[p][v] = fused_multiply_add(a, w[v], acc[p][v]);
    }
  }
  for (int p = 0; p < P; ++p)
    for (int v = 0; v < V; ++v) {
      f32x8 b, y = acc[p][v];
      std::memcpy(&b, bias + k0 + 8 * v, sizeof b);
      y += b;
      if (relu) y = y < 0.0f ? f32x8{} : y;
      float* o = out + base[p] + at[k0 + 8 * v];
      if (step == 1) std::memcpy(o, &y, sizeof y);
      else for (int l = 0; l < 8; ++l) o[l * step] = y[l];
    }
}

// Six pixels times 16 outputs at a time (12 sums, in 12 of AVX2's 16 registers), in chunks of 48
// pixels. Measured on an AVX2 EPYC, the 64 -> 32 layer with its ReLU at batch 250, from
// channels-last input: 1.4-1.5 ms, against oneDNN's 2.3 ms and 2.1 ms for three pixels times 32
// outputs (chunks of 24 to 96 pixels are about the same); from the NCHW input the decoder gives
// it: 1.5 ms, against oneDNN's 4.0 ms (it reorders the input) and 2.0 ms with the input copied
// into rows of channels first.
constexpr int PIX_P = 6, PIX_V = 2;
constexpr int64_t CHUNK = PIX_P * 8;

// The input is read where it lies, channels-last or NCHW (the paper decoder's first layer gets
// the linear layer's output unflattened, NCHW): no copy into rows of channels (above).
at::Tensor conv_transpose_2x2(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool relu) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 4 && x.scalar_type() == at::kFloat &&
              weight.scalar_type() == at::kFloat && weight.dim() == 4 && weight.size(0) == x.size(1) &&
              (weight.size(1) == 1 || weight.size(1) % 8 == 0) && weight.size(2) == 2 && weight.size(3) == 2 &&
              bias.scalar_type() == at::kFloat && bias.dim() == 1 && bias.size(0) == weight.size(1),
              "conv_transpose_2x2: fp32 x N C H W on the CPU, weight C O 2 2 with O 1 or a multiple of 8, bias O");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), O = weight.size(1), K = 4 * O;
  const bool in_cl = channels_last(x);
  auto xc = in_cl ? x : x.contiguous();
  const float* xp = xc.data_ptr<float>();
  const int64_t cs = in_cl ? 1 : H * W;  // from one channel to the next in the input
  auto pixel = [=](int64_t q) {          // input pixel q = (n, i, j)'s first channel
    return in_cl ? xp + q * C : xp + q / (H * W) * C * H * W + q % (H * W);
  };
  const bool cl = onednn_channels_last(x, weight);  // one channel: the same memory either way, other strides
  auto out = at::empty({N, O, 2 * H, 2 * W}, x.options().memory_format(
      cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
  float* op = out.data_ptr<float>();
  auto w = weight.permute({0, 2, 3, 1}).contiguous();  // [C][ky][kx][O]
  const float* wp = w.data_ptr<float>();
  if (O == 1) {
    std::vector<float> wt(8 * C);
    for (int64_t c = 0; c < C; ++c)
      for (int t = 0; t < 8; ++t) wt[8 * c + t] = wp[4 * c + t % 4];
    const float b = bias.item<float>();
    const float* wtp = wt.data();
    at::parallel_for(0, N * H, 1, [=](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)  // input row r makes output rows 2r, 2r + 1 (of all images' rows)
        for (int64_t j = 0; j < W; j += 2)
          conv_transpose_2x2_pair(pixel(r * W + j), pixel(r * W + std::min(j + 1, W - 1)), cs, C, wtp, b, relu,
                                  op + 2 * r * 2 * W + 2 * j, 2 * W, j + 1 < W);
    });
    return out;
  }
  std::vector<float> bt(K);
  std::vector<int64_t> at(K);  // output k = (t, o)'s offset from its pixel's output block
  auto bc = bias.contiguous();
  for (int64_t k = 0; k < K; ++k) {
    const int64_t t = k / O, o = k % O, dy = t / 2, dx = t % 2;
    bt[k] = bc.data_ptr<float>()[o];
    at[k] = cl ? (dy * 2 * W + dx) * O + o : (o * 2 * H + dy) * 2 * W + dx;
  }
  const int64_t step = cl ? 1 : 4 * H * W;  // from one channel to the next in the output
  const float* btp = bt.data();
  const int64_t* atp = at.data();
  const int64_t Q = N * H * W;
  // Chunks of PIX_P * 8 pixels, each computed 8 * PIX_V outputs at a time, so that the weights of
  // those outputs ([C][8 V]) and the chunk's inputs stay in the L1 cache together.
  at::parallel_for(0, (Q + CHUNK - 1) / CHUNK, 1, [=](int64_t c0, int64_t c1) {
    for (int64_t q0 = c0 * CHUNK; q0 < std::min(c1 * CHUNK, Q); q0 += CHUNK) {
      const int64_t m = std::min(CHUNK, Q - q0);
      int64_t base[CHUNK];
      const float* px[CHUNK];
      for (int64_t p = 0; p < m; ++p) {  // pixel (n, i, j)'s block starts at output pixel (n, 2i, 2j)
        const int64_t q = q0 + p, n = q / (H * W), i = q / W % H, j = q % W;
        base[p] = cl ? ((n * 2 * H + 2 * i) * 2 * W + 2 * j) * O : n * O * 4 * H * W + 2 * i * 2 * W + 2 * j;
        px[p] = pixel(q);
      }
      for (int64_t k0 = 0; k0 < K; k0 += 8 * PIX_V) {
        int64_t p = 0;
        for (; p + PIX_P <= m; p += PIX_P)
          conv_transpose_2x2_tile<PIX_P, PIX_V>(px + p, cs, C, wp, btp, K, k0, relu, op, base + p, atp, step);
        for (; p < m; ++p)
          conv_transpose_2x2_tile<1, PIX_V>(px + p, cs, C, wp, btp, K, k0, relu, op, base + p, atp, step);
      }
    }
  });
  return out;
}


// k2's last layer under bf16 autocast, in training and inference (layers.BlockConvTranspose2d:
// a 2x2 transposed convolution of stride 2 into one channel): rows [R][C] (input pixel r = (n,
// i, j)'s C channels, bf16, C a multiple of 8), weight [C][4] (tap t = ky * 2 + kx), bias [1];
// in inference also with the ReLU and the 2x2 layer before it (layers.k2_twice: "blocks").
// oneDNN computes it as a matrix product 4 wide, slowly: the layer, its gradients and their
// reshuffles took 1.6 ms of an AMX Xeon's 17 ms training step (benchmarks/README.md). Here
// every sum runs in fp32 in a fixed order, and the results are rounded to bf16. Each product of
// two bf16 values is exact in fp32, so a fused multiply-add gives the product's, then the sum's
// bits (for products in fp32's normal range); layers.py's one_channel_forward and one_channel_backward
// compute the same with PyTorch's ops, to the same bits (tests/test_kernels.py):
// - the output of tap t: the products x_c w_ct in 8 lanes (channel c in lane c % 8, the lanes'
//   products added in c's order from the first), the lanes added by halves (l + 4, then l + 2,
//   then l + 1), then the bias;
// - the input's gradient: g_0 w_c0 + g_1 w_c1 + g_2 w_c2 + g_3 w_c3, tap after tap (g_t: the
//   gradient of the pixel's output of tap t);
// - the weight's and the bias's: the products x_c g_t (the bias's: g_t) summed along each input
//   row in order from its first pixel's, the rows' sums then pairwise (Pairwise), the bias's
//   four taps then one after another.

typedef uint16_t u16x8 __attribute__((vector_size(16)));
typedef uint32_t u32x8 __attribute__((vector_size(32)));

inline f32x8 load_bf16x8(const uint16_t* p) {
  u16x8 h;
  std::memcpy(&h, p, sizeof h);
  const u32x8 u = __builtin_convertvector(h, u32x8) << 16;
  f32x8 f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline void store_bf16x8(uint16_t* p, f32x8 f) {  // rounded to nearest even, NaN as float_to_bf16's
  u32x8 u;
  std::memcpy(&u, &f, sizeof u);
  u32x8 r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16;
  r = f != f ? u32x8{} + 0x7FC0 : r;
  const u16x8 h = __builtin_convertvector(r, u16x8);
  std::memcpy(p, &h, sizeof h);
}

typedef float f32x4 __attribute__((vector_size(16)));

// A vector into memory, taken by value: a kernel's sums, kept in registers (stored from an array
// whose address is taken, gcc keeps them in memory and stores them at every step of the loop).
template <typename V> inline void store(float* p, V v) { std::memcpy(p, &v, sizeof v); }

// Four taps' sums of 8 lanes each, by halves (lane l + 4, then l + 2, then l + 1), as [t].
inline f32x4 add_by_halves(const f32x8* acc) {
#if defined(__AVX__)
  __m128 half[4];  // half[t][l] = acc[t][l] + acc[t][l + 4], then transposed: half[l][t]
  for (int t = 0; t < 4; ++t)
    half[t] = _mm_add_ps(_mm256_castps256_ps128((__m256)acc[t]), _mm256_extractf128_ps((__m256)acc[t], 1));
  _MM_TRANSPOSE4_PS(half[0], half[1], half[2], half[3]);
  return (f32x4)_mm_add_ps(_mm_add_ps(half[0], half[2]), _mm_add_ps(half[1], half[3]));
#else
  f32x4 half[4];  // half[l][t] = acc[t][l] + acc[t][l + 4]
  for (int l = 0; l < 4; ++l)
    half[l] = f32x4{acc[0][l] + acc[0][l + 4], acc[1][l] + acc[1][l + 4], acc[2][l] + acc[2][l + 4],
                    acc[3][l] + acc[3][l + 4]};
  return (half[0] + half[2]) + (half[1] + half[3]);
#endif
}

// Rows [i0, i1) of pixels: x: [pixel][C]; wt: [t][C]; out: [N][2H][2W], or [N][4H][4W] of Blocks.
// Row i is an image's row (n, y), its W pixels making output rows 2i and 2i + 1. Of Blocks (the
// rows of k2_twice: each input pixel (n, y, x) of the 2x2 layer before, as its 2x2 block of
// output pixels, ky then kx, not yet ReLU'd) row i is a block's row (n, y, x, ky), its 2 pixels
// making output rows 4 (n H + y) + 2 ky and the next, from column 4x; and each input is ReLU'd
// as it is read (-0 and NaN kept, as torch.relu keeps them). C = 8 CB, the sums in registers.
template <int CB, bool Blocks>
void one_channel_forward_rows(const uint16_t* __restrict x, const float* __restrict wt, float b,
                              uint16_t* __restrict out, int64_t W, int64_t i0, int64_t i1) {
  constexpr int64_t C = 8 * CB;
  f32x8 w[4][CB];
  for (int t = 0; t < 4; ++t)
    for (int k = 0; k < CB; ++k) std::memcpy(&w[t][k], wt + t * C + 8 * k, sizeof(f32x8));
  constexpr int64_t scale = Blocks ? 4 : 2;
  const int64_t J = Blocks ? 2 : W, S = scale * W;  // pixels a row; an output row's length
  auto in = [](const uint16_t* p) {
    const f32x8 v = load_bf16x8(p);
    if constexpr (Blocks) return v < 0 ? f32x8{} : v;
    else return v;
  };
  for (int64_t i = i0; i < i1; ++i) {
    uint16_t* o = Blocks ? out + ((i / 2 / W) * 4 + 2 * (i % 2)) * S + 4 * (i / 2 % W) : out + 2 * i * S;
    for (int64_t j = 0; j < J; ++j) {
      const uint16_t* xr = x + (i * J + j) * C;
      f32x8 acc[4];
      const f32x8 x0 = in(xr);
      for (int t = 0; t < 4; ++t) acc[t] = x0 * w[t][0];
#pragma GCC unroll 8
      for (int k = 1; k < CB; ++k) {
        const f32x8 xk = in(xr + 8 * k);
        for (int t = 0; t < 4; ++t) acc[t] = fused_multiply_add(xk, w[t][k], acc[t]);
      }
      const f32x4 y = add_by_halves(acc) + b;
      o[2 * j] = float_to_bf16(y[0]);
      o[2 * j + 1] = float_to_bf16(y[1]);
      o[S + 2 * j] = float_to_bf16(y[2]);
      o[S + 2 * j + 1] = float_to_bf16(y[3]);
    }
  }
}

// Calls f(std::integral_constant<int, blocks>{}) for blocks from 1 to most: a kernel's channels
// in blocks of a vector each, its sums in registers.
template <int most, typename F> void dispatch_blocks(int64_t blocks, F f) {
  if constexpr (most > 0) {
    if (blocks == most) f(std::integral_constant<int, most>{});
    else dispatch_blocks<most - 1>(blocks, f);
  }
}

at::Tensor one_channel_forward(const at::Tensor& rows, const at::Tensor& weight, const at::Tensor& bias, int64_t N,
                               int64_t H, int64_t W, bool blocks) {
  const int64_t pixels = N * H * W * (blocks ? 4 : 1), scale = blocks ? 4 : 2;
  TORCH_CHECK(rows.device().is_cpu() && rows.scalar_type() == at::kBFloat16 && rows.dim() == 2 &&
              rows.is_contiguous() && rows.size(0) == pixels && rows.size(0) > 0 && rows.size(1) % 8 == 0 &&
              rows.size(1) <= 64 && weight.scalar_type() == at::kBFloat16 && weight.dim() == 2 &&
              weight.size(0) == rows.size(1) && weight.size(1) == 4 && bias.scalar_type() == at::kBFloat16 &&
              bias.numel() == 1,
              "one_channel_forward: contiguous bf16 rows [N H W (4 of blocks)][C], C a multiple of 8 up to 64, "
              "weight [C][4], bias [1]");
  const int64_t C = rows.size(1);
  auto wt = weight.t().contiguous().to(at::kFloat);  // [t][c]
  const float b = bias.to(at::kFloat).item<float>();
  auto out = at::empty({N, 1, scale * H, scale * W}, rows.options());
  const uint16_t* xp = (const uint16_t*)rows.data_ptr();
  const float* wp = wt.data_ptr<float>();
  uint16_t* op = (uint16_t*)out.data_ptr();
  dispatch_blocks<8>(C / 8, [&](auto cb) {
    constexpr int CB = decltype(cb)::value;
    at::parallel_for(0, N * H * (blocks ? 2 * W : 1), 16, [=](int64_t i0, int64_t i1) {
      if (blocks) one_channel_forward_rows<CB, true>(xp, wp, b, op, W, i0, i1);
      else one_channel_forward_rows<CB, false>(xp, wp, b, op, W, i0, i1);
    }); });
  return out;
}

inline void sum_into(const float* __restrict left, float* __restrict v, int64_t K) {
  for (int64_t k = 0; k < K; ++k) v[k] = left[k] + v[k];
}

// A pairwise sum of vectors of K floats, added one at a time: level l holds the sum of the last
// 2^l vectors where bit l of their count is set (a binary counter), and the total adds the levels
// from the lowest up. That is the sum of adjacent pairs, level by level, an odd last one moved up
// as it is (layers.pairwise_sum); and over blocks of 2^k vectors it is the pairwise sum of the
// blocks' pairwise sums, so blocks can be summed on threads of their own.
class Pairwise {
 public:
  explicit Pairwise(int64_t K) : K_(K), levels_(64 * K) {}
  void add(float* __restrict v) {  // v: the next vector (overwritten)
    int l = 0;
    for (int64_t i = count_; i & 1; i >>= 1, ++l) sum_into(levels_.data() + l * K_, v, K_);
    std::memcpy(levels_.data() + l * K_, v, K_ * sizeof(float));
    ++count_;
  }
  void total(float* __restrict out) const {
    bool first = true;
    for (int l = 0; (count_ >> l) != 0; ++l) {
      if (!((count_ >> l) & 1)) continue;
      if (first) std::memcpy(out, levels_.data() + l * K_, K_ * sizeof(float));
      else sum_into(levels_.data() + l * K_, out, K_);
      first = false;
    }
    if (first) std::fill(out, out + K_, 0.0f);
  }
 private:
  int64_t K_, count_ = 0;
  std::vector<float> levels_;
};

constexpr int64_t ROWS_AT_ONCE = 64;  // input rows a thread sums at a time; a power of two

// Input rows [i0, i1) of all images' rows: their pixels' input gradients (gx: [pixel][C]) and the
// pairwise sum of the rows' sums (into total: [4 C + 4], the weight's [t][c], then the bias's [t]).
// wt: [t][C] fp32; g: the output's gradient [N][2H][2W]. C = 8 CB, the row's sums in registers.
template <int CB>
void one_channel_backward_rows(const uint16_t* __restrict x, const uint16_t* __restrict g, uint16_t* __restrict gx,
                               const float* __restrict wt, int64_t W, int64_t i0, int64_t i1, float* __restrict total) {
  constexpr int64_t C = 8 * CB, K = 4 * C + 4;
  f32x8 w[4][CB];
  for (int t = 0; t < 4; ++t)
    for (int k = 0; k < CB; ++k) std::memcpy(&w[t][k], wt + t * C + 8 * k, sizeof(f32x8));
  Pairwise sum(K);
  float along[K];
  for (int64_t i = i0; i < i1; ++i) {
    const uint16_t* g0 = g + 2 * i * 2 * W;  // the output rows 2i, 2i + 1 of all images' rows
    const uint16_t* g1 = g0 + 2 * W;
    f32x8 acc[4][CB];
    f32x4 bias;
    for (int64_t j = 0; j < W; ++j) {
      const f32x4 gs = {bf16_to_float(g0[2 * j]), bf16_to_float(g0[2 * j + 1]), bf16_to_float(g1[2 * j]),
                        bf16_to_float(g1[2 * j + 1])};
      const uint16_t* xr = x + (i * W + j) * C;
      uint16_t* gr = gx + (i * W + j) * C;
#pragma GCC unroll 8
      for (int k = 0; k < CB; ++k) {
        f32x8 v = gs[0] * w[0][k];
        for (int t = 1; t < 4; ++t) v = fused_multiply_add(splat(gs[t]), w[t][k], v);
        store_bf16x8(gr + 8 * k, v);
        const f32x8 xk = load_bf16x8(xr + 8 * k);
        for (int t = 0; t < 4; ++t) acc[t][k] = j == 0 ? xk * gs[t] : fused_multiply_add(xk, splat(gs[t]), acc[t][k]);
      }
      bias = j == 0 ? gs : bias + gs;
    }
    for (int t = 0; t < 4; ++t)
      for (int k = 0; k < CB; ++k) store(along + t * C + 8 * k, acc[t][k]);
    store(along + 4 * C, bias);
    sum.add(along);
  }
  sum.total(total);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> one_channel_backward(const at::Tensor& rows, const at::Tensor& weight,
                                                                  const at::Tensor& g) {
  TORCH_CHECK(rows.device().is_cpu() && rows.scalar_type() == at::kBFloat16 && rows.dim() == 2 &&
              rows.is_contiguous() && rows.size(1) % 8 == 0 && weight.scalar_type() == at::kBFloat16 &&
              weight.dim() == 2 && weight.size(0) == rows.size(1) && weight.size(1) == 4 &&
              g.scalar_type() == at::kBFloat16 && g.dim() == 4 && g.size(1) == 1 && g.is_contiguous() &&
              g.size(2) % 2 == 0 && g.size(3) % 2 == 0 && rows.size(0) == g.size(0) * g.size(2) * g.size(3) / 4 &&
              rows.size(0) > 0 && rows.size(1) <= 64,
              "one_channel_backward: contiguous bf16 rows [N H W][C], C a multiple of 8 up to 64, weight [C][4], "
              "contiguous gradient [N][1][2H][2W]");
  const int64_t C = rows.size(1), W = g.size(3) / 2, K = 4 * C + 4;
  auto wt = weight.t().contiguous().to(at::kFloat);  // [t][c]
  auto gx = at::empty_like(rows);
  const int64_t image_rows = g.size(0) * g.size(2) / 2, blocks = (image_rows + ROWS_AT_ONCE - 1) / ROWS_AT_ONCE;
  std::vector<float> sums(blocks * K);
  const uint16_t* xp = (const uint16_t*)rows.data_ptr();
  const uint16_t* gp = (const uint16_t*)g.data_ptr();
  uint16_t* gxp = (uint16_t*)gx.data_ptr();
  const float* wp = wt.data_ptr<float>();
  float* sp = sums.data();
  dispatch_blocks<8>(C / 8, [&](auto cb) {
    at::parallel_for(0, blocks, 1, [=](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        one_channel_backward_rows<decltype(cb)::value>(xp, gp, gxp, wp, W, b * ROWS_AT_ONCE,
                                                       std::min(image_rows, (b + 1) * ROWS_AT_ONCE), sp + b * K);
    }); });
  Pairwise over_blocks(K);
  for (int64_t b = 0; b < blocks; ++b) over_blocks.add(sums.data() + b * K);
  std::vector<float> s(K);
  over_blocks.total(s.data());
  auto gw = at::empty({C, 4}, rows.options());
  uint16_t* gwp = (uint16_t*)gw.data_ptr();
  for (int64_t c = 0; c < C; ++c)
    for (int t = 0; t < 4; ++t) gwp[c * 4 + t] = float_to_bf16(s[t * C + c]);
  float bias = s[4 * C];
  for (int t = 1; t < 4; ++t) bias += s[4 * C + t];
  auto gb = at::empty({1}, rows.options());
  *(uint16_t*)gb.data_ptr() = float_to_bf16(bias);
  return {gx, gw, gb};
}

}  // namespace

TORCH_LIBRARY(fashionae, m) {
  m.def("relu_dropout(Tensor x, int key, int thr, float scale) -> Tensor", &relu_dropout);
  m.def("relu_dropout_backward(Tensor dy, Tensor y, float scale) -> Tensor", &relu_dropout_backward);
  m.def("relu_dropout_pool(Tensor x, int key, int thr, float scale) -> (Tensor, Tensor)", &relu_dropout_pool);
  m.def("relu_pool(Tensor x, bool indices) -> (Tensor, Tensor)", &relu_pool);
  m.def("relu_pool_backward(Tensor dout, Tensor out, Tensor idx) -> Tensor", &relu_pool_backward);
  m.def("relu_dropout_pool_backward(Tensor dout, Tensor out, Tensor idx, float scale) -> Tensor", &relu_dropout_pool_backward);
  m.def("conv3x3_relu_pool(Tensor x, Tensor weight, Tensor bias, bool bf16) -> Tensor", &conv3x3_relu_pool);
  m.def("conv_transpose_2x2(Tensor x, Tensor weight, Tensor bias, bool relu) -> Tensor", &conv_transpose_2x2);
  m.def("one_channel_forward(Tensor rows, Tensor weight, Tensor bias, int N, int H, int W, bool blocks) -> Tensor",
        &one_channel_forward);
  m.def("one_channel_backward(Tensor rows, Tensor weight, Tensor g) -> (Tensor, Tensor, Tensor)",
        &one_channel_backward);
}
