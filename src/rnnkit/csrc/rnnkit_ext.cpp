// rnnkit's fused CPU kernels: whole time loops of a layer direction in compiled code.
//
// Why: a layer-norm / recurrent-dropout / zoneout LSTM step in eager PyTorch is ~15 forward ops and
// ~25 autograd nodes, each a few microseconds of dispatch; at B32 H128 that alone costs what
// torch's own fused kernel spends on the whole step. Here each step is one GEMM (ATen, so MKL or
// OpenBLAS) plus one pass over the batch (OpenMP through at::parallel_for) that does the gates,
// the layer-norm statistics and the state update, saving what the backward needs. The backward is
// one pass per step plus dh = dA . W_hh; dW_hh is one large GEMM after the loop.
//
// The Python side (rnnkit/fused.py) owns the autograd Functions, draws the dropout and zoneout
// masks exactly as the reference loop does, and hands them in. Layouts are time-major and
// contiguous: x_proj (T, B, G*H), states (B, H), zoneout uniforms (T, K, B, H), lengths (B,).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

// The inner loops below touch distinct buffers (or the same element in place): tell g++ so, or it
// gives up vectorising loops with many pointers for want of runtime alias checks.
#define RNNKIT_IVDEP _Pragma("GCC ivdep")

// Runtime ISA dispatch without -march=native: every per-row pass is an always-inlined lambda run
// through run_rows, which g++ compiles three times (AVX-512, AVX2+FMA, baseline) and picks from
// at load time by the CPU it finds. The build stays portable across x86-64 machines while the
// transcendental-heavy passes use the widest vectors the CPU has.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RNNKIT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RNNKIT_CLONES
#endif
#define RNNKIT_INLINE __attribute__((always_inline))

namespace {

using at::Tensor;
using Opt = std::optional<Tensor>;

// --- activations ---------------------------------------------------------------------------------
// float: a Cephes-style exp (range reduction + degree-5 polynomial, ~1 ulp) written so that g++ -O3
// vectorises the loops it sits in on any x86-64 (no -march=native, no libm call per element).
// double: the libm functions, so float64 gradient checks see exact derivatives.

RNNKIT_INLINE inline float exp_f(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to the nearest integer
  float n = (x * 1.44269504088896341f + shifter) - shifter;
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

template <typename T>
inline T sigm(T x);
template <>
RNNKIT_INLINE inline float sigm<float>(float x) {
  return 1.0f / (1.0f + exp_f(-x));
}
template <>
RNNKIT_INLINE inline double sigm<double>(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

template <typename T>
inline T tanh_(T x);
template <>
RNNKIT_INLINE inline float tanh_<float>(float x) {
  return 2.0f / (1.0f + exp_f(-2.0f * x)) - 1.0f;
}
template <>
RNNKIT_INLINE inline double tanh_<double>(double x) {
  return std::tanh(x);
}

template <typename T>
inline T exp_(T x);
template <>
RNNKIT_INLINE inline float exp_<float>(float x) {
  return exp_f(x);
}
template <>
RNNKIT_INLINE inline double exp_<double>(double x) {
  return std::exp(x);
}

// --- layer norm over one row ---------------------------------------------------------------------

constexpr double kEps = 1e-5;  // torch.nn.LayerNorm's default

// Sums with eight partial accumulators: the compiler vectorises these without -ffast-math, where
// a single running sum would be a chain of dependent adds.
template <typename T>
RNNKIT_INLINE inline T sum_row(const T* v, int64_t n) {
  T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += v[j + k];
  }
  T s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < n; ++j) s += v[j];
  return s;
}

template <typename T>
RNNKIT_INLINE inline T dot_row(const T* a, const T* b, int64_t n) {
  T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += a[j + k] * b[j + k];
  }
  T s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < n; ++j) s += a[j] * b[j];
  return s;
}

// Normalise v[0:n) into xhat, return 1/std (biased variance, as torch.nn.LayerNorm); the mean
// goes to *mean_out when asked for (the input-side norm keeps only mean and 1/std per row and
// recomputes xhat in the backward, bit for bit, with ln_apply).
template <typename T>
RNNKIT_INLINE inline T ln_row(const T* v, T* xhat, int64_t n, T* mean_out = nullptr) {
  const T mean = sum_row(v, n) / static_cast<T>(n);
  RNNKIT_IVDEP
  for (int64_t j = 0; j < n; ++j) xhat[j] = v[j] - mean;
  const T var = dot_row(xhat, xhat, n) / static_cast<T>(n);
  const T rstd = T(1) / std::sqrt(var + static_cast<T>(kEps));
  RNNKIT_IVDEP
  for (int64_t j = 0; j < n; ++j) xhat[j] *= rstd;
  if (mean_out) *mean_out = mean;
  return rstd;
}

// xhat = (v - mean) * rstd, the same two roundings as ln_row.
template <typename T>
RNNKIT_INLINE inline void ln_apply(const T* v, T mean, T rstd, T* xhat, int64_t n) {
  RNNKIT_IVDEP
  for (int64_t j = 0; j < n; ++j) xhat[j] = (v[j] - mean) * rstd;
}

// The layer-norm backward of one row, in place: d <- rstd * (d - mean(d) - xhat * mean(d * xhat)),
// where d on entry is the gradient with respect to xhat.
template <typename T>
RNNKIT_INLINE inline void ln_row_backward(T* d, const T* xhat, T rstd, int64_t n) {
  const T m1 = sum_row(d, n) / static_cast<T>(n);
  const T m2 = dot_row(d, xhat, n) / static_cast<T>(n);
  RNNKIT_IVDEP
  for (int64_t j = 0; j < n; ++j) d[j] = rstd * (d[j] - m1 - xhat[j] * m2);
}

// --- shared plumbing -----------------------------------------------------------------------------

// The per-step GEMMs call BLAS directly (the sgemm_/dgemm_ that libtorch_cpu exports, MKL in the
// x86 wheels): an at::mm per step costs a dispatcher round trip and two tensor views, a few
// microseconds that add up over T steps at small batches.
extern "C" {
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*,
            const float*, const int*, const float*, const int*, const float*, float*, const int*);
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*,
            const double*, const int*, const double*, const int*, const double*, double*,
            const int*);
}

inline void blas_gemm(char ta, char tb, int m, int n, int k, const float* a, int lda,
                      const float* b, int ldb, float* c, int ldc) {
  const float one = 1.0f, zero = 0.0f;
  sgemm_(&ta, &tb, &m, &n, &k, &one, a, &lda, b, &ldb, &zero, c, &ldc);
}
inline void blas_gemm(char ta, char tb, int m, int n, int k, const double* a, int lda,
                      const double* b, int ldb, double* c, int ldc) {
  const double one = 1.0, zero = 0.0;
  dgemm_(&ta, &tb, &m, &n, &k, &one, a, &lda, b, &ldb, &zero, c, &ldc);
}

// Row-major C (B, G) = X (B, H) W^T for W (G, H): BLAS is column-major, so this is C^T = W X^T.
template <typename T>
void gemm_xwt(int64_t B, int64_t H, int64_t G, const T* X, const T* W, T* C) {
  blas_gemm('T', 'N', G, B, H, W, H, X, H, C, G);
}

// Row-major C (B, H) = D (B, G) W for W (G, H): C^T = W^T D^T.
template <typename T>
void gemm_dw(int64_t B, int64_t G, int64_t H, const T* D, const T* W, T* C) {
  blas_gemm('N', 'N', H, B, G, W, H, D, G, C, H);
}

// --- buffers --------------------------------------------------------------------------------------
//
// The large buffers of a call (states, saved activations, gradients: tens of MB at B64 T256 H256)
// come from a small cache of blocks instead of torch's CPU allocator. That allocator hands large
// requests to malloc, which maps fresh pages for each and unmaps them on free, so every call paid
// a page fault per 4 KiB: about 40 ms per 64 MiB here, measured; an LN-LSTM layer at B64 T256 H256
// has ~350 MiB of them, about a sixth of its fwd+bwd.
// A freed block goes back to the cache (up to kCacheBytes of free blocks; beyond that to free())
// and the next call of the same shape reuses it, already mapped. What stays cached is at most the
// working set the last calls had live anyway.

constexpr size_t kPoolMinBytes = size_t(1) << 20;   // smaller requests: at::empty
constexpr size_t kCacheBytes = size_t(1) << 30;     // free blocks kept at most

struct BlockCache {
  std::mutex mutex;
  std::multimap<size_t, void*> free_blocks;  // capacity in bytes -> block
  size_t cached = 0;

  // A free block of at least n bytes and at most twice that (its capacity in *cap), or null.
  void* take(size_t n, size_t* cap) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = free_blocks.lower_bound(n);
    if (it == free_blocks.end() || it->first > 2 * n) return nullptr;
    void* p = it->second;
    *cap = it->first;
    cached -= it->first;
    free_blocks.erase(it);
    return p;
  }

  void give(void* p, size_t cap) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (cached + cap <= kCacheBytes) {
        free_blocks.emplace(cap, p);
        cached += cap;
        return;
      }
    }
    std::free(p);
  }
};

BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache();  // never destroyed: tensors may outlive statics
  return *cache;
}

// at::empty(sizes, opts), from the block cache when large.
Tensor scratch(at::IntArrayRef sizes, const at::TensorOptions& opts) {
  int64_t numel = 1;
  for (int64_t d : sizes) numel *= d;
  const size_t bytes = static_cast<size_t>(numel) * opts.dtype().itemsize();
  if (bytes < kPoolMinBytes) return at::empty(sizes, opts);
  size_t cap = 0;
  void* p = block_cache().take(bytes, &cap);
  if (p == nullptr) {
    cap = bytes;
    TORCH_CHECK(posix_memalign(&p, 64, cap) == 0, "rnnkit fused: out of memory (", cap, " bytes)");
  }
  return at::from_blob(
      p, sizes, [cap](void* q) { block_cache().give(q, cap); }, opts);
}

// Pointer to slot i of the leading dimension (no tensor view is made).
template <typename T>
inline T* slot(const Tensor& x, int64_t i) {
  return x.data_ptr<T>() + i * x.stride(0);
}

// Per-thread accumulators for the parameter gradients that are sums over steps and rows (biases,
// layer-norm gains): added to while the rows are in cache, reduced once after the loop.
template <typename T>
struct ThreadSums {
  Tensor buf;  // (threads, width)
  ThreadSums(int64_t width, const at::TensorOptions& opts)
      : buf(at::zeros({at::get_num_threads(), width}, opts)) {}
  T* row() const { return buf.data_ptr<T>() + at::get_thread_num() * buf.size(1); }
  Tensor total(int64_t offset, int64_t n) const { return buf.narrow(1, offset, n).sum(0); }
};

template <typename F>
RNNKIT_CLONES void run_rows(const F& f, int64_t b0, int64_t b1) {
  f(b0, b1);
}

// at::parallel_for over batch rows, each chunk through the ISA-dispatched run_rows.
template <typename F>
void parallel_rows(int64_t B, int64_t grain_size, const F& f) {
  at::parallel_for(0, B, grain_size, [&](int64_t b0, int64_t b1) { run_rows(f, b0, b1); });
}

// Zoneout in training: a unit keeps its previous value where its uniform draw is below p (the
// reference loop's ``rand < p``). Returns ``out`` filled with those 0/1 keep weights.
template <typename T>
RNNKIT_INLINE inline const T* keep_row(const T* u, T p, T* out, int64_t n) {
  RNNKIT_IVDEP
  for (int64_t j = 0; j < n; ++j) out[j] = u[j] < p ? T(1) : T(0);
  return out;
}

template <typename T>
const T* ptr_or_null(const Opt& t) {
  return t.has_value() && t->defined() ? t->data_ptr<T>() : nullptr;
}

// The input half of a row's gate pre-activations, ``LN_ih(x_proj) * g_ih + b_ih`` (layer norm
// when g is given, the bias when given): x itself when there is neither, else buf. Done here rather
// than as torch ops over the whole (T, B, G) projection, which cost two more passes over it (and
// two more large buffers) in the forward and as many in the backward.
template <typename T>
RNNKIT_INLINE inline const T* input_row(const T* x, const T* g, const T* bias, T* buf, T* mean,
                                        T* rstd, int64_t n) {
  if (g) {
    *rstd = ln_row(x, buf, n, mean);
    if (bias) {
      RNNKIT_IVDEP
      for (int64_t j = 0; j < n; ++j) buf[j] = buf[j] * g[j] + bias[j];
    } else {
      RNNKIT_IVDEP
      for (int64_t j = 0; j < n; ++j) buf[j] *= g[j];
    }
    return buf;
  }
  if (bias) {
    RNNKIT_IVDEP
    for (int64_t j = 0; j < n; ++j) buf[j] = x[j] + bias[j];
    return buf;
  }
  return x;
}

// The backward of input_row's layer norm, in place on d (the gradient of the row's pre-activations
// on entry, of x_proj on exit); adds to the gain's gradient. buf: scratch for the recomputed xhat.
template <typename T>
RNNKIT_INLINE inline void input_row_backward(T* d, const T* x, const T* g, T mean, T rstd, T* buf,
                                             T* dg, int64_t n) {
  ln_apply(x, mean, rstd, buf, n);
  RNNKIT_IVDEP
  for (int64_t j = 0; j < n; ++j) {
    dg[j] += d[j] * buf[j];
    d[j] *= g[j];
  }
  ln_row_backward(d, buf, rstd, n);
}

// Rows of a batch per parallel task: small batches run on one thread, where the fork costs more
// than the work.
int64_t grain(int64_t B, int64_t width) {
  (void)B;
  return std::max<int64_t>(1, 2048 / std::max<int64_t>(width, 1));
}

struct Common {
  int64_t T, B, H;
  const int64_t* len;   // (B,) or null: steps at or past len[b] keep the state, output 0
  const void* noise;    // (R, H) recurrent-dropout mask or null
  int64_t noise_rows;   // 1 (shared) or B
  const void* zmask;    // (T, K, B, H) zoneout uniform draws (training) or null
  double zoneout;       // p; used as the keep weight in eval mode (zmask null)
  bool save;            // keep every step for the backward (else reuse one slot)
};

Common read_common(const Tensor& xp, const Tensor& h0, const Opt& noise, const Opt& zmask,
                   double zoneout, const Opt& lengths, bool save) {
  Common c;
  c.T = xp.size(0);
  c.B = xp.size(1);
  c.H = h0.size(1);
  c.len = ptr_or_null<int64_t>(lengths);
  c.noise = noise.has_value() && noise->defined() ? noise->data_ptr() : nullptr;
  c.noise_rows = c.noise ? noise->size(0) : 0;
  c.zmask = zmask.has_value() && zmask->defined() ? zmask->data_ptr() : nullptr;
  c.zoneout = zoneout;
  c.save = save;
  return c;
}

void check(const Tensor& t, const char* name, int64_t dim) {
  TORCH_CHECK(t.dim() == dim, "rnnkit fused: ", name, " must have ", dim, " dims, got ", t.dim());
  TORCH_CHECK(t.is_contiguous(), "rnnkit fused: ", name, " must be contiguous");
  TORCH_CHECK(t.device().is_cpu(), "rnnkit fused: ", name, " must be on the CPU");
}

// --- LSTM ----------------------------------------------------------------------------------------
//
//   A      = (h_{t-1} * noise) W_hh^T                      (one GEMM)
//   gates  = [LN_ih(x_proj_t) * g_ih | x_proj_t] + b_ih + [LN_hh(A) * g_hh | A] + b_hh   i, f, g, o
//   c      = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g)
//   h      = sigmoid(o) tanh([LN_c(c) | c])
//   c_t, h_t = zoneout(c_{t-1}, c), zoneout(h_{t-1}, h)    k * prev + (1 - k) * new
//
// Saved per step: acts (sigmoid i, sigmoid f, tanh g, sigmoid o), tanh of the cell output, the
// normalised A and c with their 1/std, the input norm's mean and 1/std (its xhat is recomputed
// from x_proj), and the states. x_proj = W_ih x without the bias.

template <typename T>
std::vector<Tensor> lstm_forward_impl(const Tensor& xp, const Tensor& h0, const Tensor& c0,
                                      const Tensor& w_hh, const Opt& b_ih, const Opt& g_ih,
                                      const Opt& b_hh, const Opt& g_hh,
                                      const Opt& g_c, const Opt& b_c, const Opt& noise,
                                      const Opt& zmask, double zoneout, const Opt& lengths,
                                      bool save) {
  const Common k = read_common(xp, h0, noise, zmask, zoneout, lengths, save);
  const int64_t nT = k.T, B = k.B, H = k.H, G = 4 * H;
  const bool ln = g_hh.has_value() && g_hh->defined();
  const bool lnc = g_c.has_value() && g_c->defined();
  const bool lni = g_ih.has_value() && g_ih->defined();
  const int64_t S = save ? nT : 1;  // slots of the per-step saved tensors
  auto opts = xp.options();
  Tensor out = scratch({nT, B, H}, opts);
  Tensor hs = scratch({save ? nT + 1 : 2, B, H}, opts);
  Tensor cs = scratch({save ? nT + 1 : 2, B, H}, opts);
  Tensor ht = k.noise ? scratch({S, B, H}, opts) : hs;  // GEMM input h * noise
  Tensor acts = scratch({S, B, G}, opts);
  Tensor tc = scratch({S, B, H}, opts);
  Tensor xhat = ln ? scratch({S, B, G}, opts) : scratch({0}, opts);
  Tensor rstd = ln ? scratch({S, B}, opts) : scratch({0}, opts);
  Tensor chat = lnc ? scratch({S, B, H}, opts) : scratch({0}, opts);
  Tensor rstdc = lnc ? scratch({S, B}, opts) : scratch({0}, opts);
  Tensor meani = lni ? scratch({S, B}, opts) : scratch({0}, opts);
  Tensor rstdi = lni ? scratch({S, B}, opts) : scratch({0}, opts);
  Tensor A = scratch({B, G}, opts);
  hs[0].copy_(h0);
  cs[0].copy_(c0);
  const T* noise_p = static_cast<const T*>(k.noise);
  if (k.noise) ht[0].copy_(h0 * *noise);
  const T* w_p = w_hh.data_ptr<T>();
  const T* xp_p = xp.data_ptr<T>();
  const T* bih = ptr_or_null<T>(b_ih);
  const T* gih = ptr_or_null<T>(g_ih);
  const T* bhh = ptr_or_null<T>(b_hh);
  const T* ghh = ptr_or_null<T>(g_hh);
  const T* gc = ptr_or_null<T>(g_c);
  const T* bc = ptr_or_null<T>(b_c);
  const T* zm = static_cast<const T*>(k.zmask);
  const T zp = static_cast<T>(zoneout);
  T* A_p = A.data_ptr<T>();
  for (int64_t t = 0; t < nT; ++t) {
    const int64_t s = save ? t : 0;  // slot of this step's saved tensors
    const int64_t prev = save ? t : (t & 1), next = save ? t + 1 : ((t + 1) & 1);
    const int64_t hslot = k.noise ? s : prev;
    gemm_xwt(B, H, G, slot<T>(ht, hslot), w_p, A_p);
    const T* hp = slot<T>(hs, prev);
    const T* cp = slot<T>(cs, prev);
    T* hn = slot<T>(hs, next);
    T* cn = slot<T>(cs, next);
    T* htn = k.noise ? slot<T>(ht, save ? std::min(t + 1, nT - 1) : 0) : nullptr;
    const bool write_ht = k.noise && (t + 1 < nT);
    T* y = slot<T>(out, t);
    T* act = slot<T>(acts, s);
    T* tcp = slot<T>(tc, s);
    T* xh = ln ? slot<T>(xhat, s) : nullptr;
    T* rs = ln ? slot<T>(rstd, s) : nullptr;
    T* ch = lnc ? slot<T>(chat, s) : nullptr;
    T* rsc = lnc ? slot<T>(rstdc, s) : nullptr;
    T* mi = lni ? slot<T>(meani, s) : nullptr;
    T* rsi = lni ? slot<T>(rstdi, s) : nullptr;
    parallel_rows(B, grain(B, G), [&](int64_t b0, int64_t b1) RNNKIT_INLINE {
      std::vector<T> pre(G), xin(G), craw(H), cl(H), zfill(H, zp), kcb(H), khb(H);
      for (int64_t b = b0; b < b1; ++b) {
        const T* hpb = hp + b * H;
        const T* cpb = cp + b * H;
        T* hnb = hn + b * H;
        T* cnb = cn + b * H;
        const T* nz = noise_p ? noise_p + (k.noise_rows == 1 ? 0 : b) * H : nullptr;
        if (k.len && t >= k.len[b]) {
          std::copy(hpb, hpb + H, hnb);
          std::copy(cpb, cpb + H, cnb);
          std::fill(y + b * H, y + (b + 1) * H, T(0));
          // The backward sums over these rows with a zero gradient: keep them finite.
          if (ln) std::fill(xh + b * G, xh + (b + 1) * G, T(0));
          if (lnc) std::fill(ch + b * H, ch + (b + 1) * H, T(0));
          if (lni) mi[b] = rsi[b] = T(0);
          if (write_ht) {
            RNNKIT_IVDEP
            for (int64_t j = 0; j < H; ++j) htn[b * H + j] = hpb[j] * nz[j];
          }
          continue;
        }
        const T* a = A_p + b * G;
        const T* x = input_row(xp_p + (t * B + b) * G, gih, bih, xin.data(), lni ? mi + b : nullptr,
                               lni ? rsi + b : nullptr, G);
        T* p = pre.data();
        if (ln) {
          rs[b] = ln_row(a, xh + b * G, G);
          const T* xhb = xh + b * G;
          RNNKIT_IVDEP
          for (int64_t j = 0; j < G; ++j) p[j] = x[j] + xhb[j] * ghh[j] + (bhh ? bhh[j] : T(0));
        } else if (bhh) {
          RNNKIT_IVDEP
          for (int64_t j = 0; j < G; ++j) p[j] = x[j] + a[j] + bhh[j];
        } else {
          RNNKIT_IVDEP
          for (int64_t j = 0; j < G; ++j) p[j] = x[j] + a[j];
        }
        T* ab = act + b * G;
        RNNKIT_IVDEP
        for (int64_t j = 0; j < H; ++j) {
          const T si = sigm(p[j]), sf = sigm(p[H + j]), tg = tanh_(p[2 * H + j]);
          const T so = sigm(p[3 * H + j]);
          ab[j] = si;
          ab[H + j] = sf;
          ab[2 * H + j] = tg;
          ab[3 * H + j] = so;
          craw[j] = sf * cpb[j] + si * tg;
        }
        const T* cout = craw.data();
        if (lnc) {
          T* chb = ch + b * H;
          rsc[b] = ln_row(craw.data(), chb, H);
          RNNKIT_IVDEP
          for (int64_t j = 0; j < H; ++j) cl[j] = chb[j] * gc[j] + bc[j];
          cout = cl.data();
        }
        const T* zc = zm ? keep_row(zm + ((t * 2 + 0) * B + b) * H, zp, kcb.data(), H) : zfill.data();
        const T* zh = zm ? keep_row(zm + ((t * 2 + 1) * B + b) * H, zp, khb.data(), H) : zfill.data();
        T* tcb = tcp + b * H;
        RNNKIT_IVDEP
        for (int64_t j = 0; j < H; ++j) {
          const T tcj = tanh_(cout[j]);
          tcb[j] = tcj;
          const T hraw = ab[3 * H + j] * tcj;
          const T kc = zc[j], kh = zh[j];
          const T cnew = craw[j] + kc * (cpb[j] - craw[j]);
          const T hnew = hraw + kh * (hpb[j] - hraw);
          cnb[j] = cnew;
          hnb[j] = hnew;
          y[b * H + j] = hnew;
        }
        if (write_ht) {
          RNNKIT_IVDEP
          for (int64_t j = 0; j < H; ++j) htn[b * H + j] = hnb[j] * nz[j];
        }
      }
    });
  }
  const int64_t last = save ? nT : (nT & 1);
  Tensor hT = hs.select(0, last).clone(), cT = cs.select(0, last).clone();
  if (!save) return {out, hT, cT};
  Tensor ht_saved = k.noise ? ht : hs.narrow(0, 0, nT);
  return {out, hT, cT, ht_saved, cs, acts, tc, xhat, rstd, chat, rstdc, meani, rstdi};
}

template <typename T>
std::vector<Tensor> lstm_backward_impl(const Tensor& dy, const Tensor& dhT, const Tensor& dcT,
                                       const Tensor& xp, const Tensor& w_hh, const Opt& g_ih,
                                       const Opt& g_hh, const Opt& g_c, const Opt& noise,
                                       const Opt& zmask, double zoneout, const Opt& lengths,
                                       const Tensor& ht, const Tensor& cs, const Tensor& acts,
                                       const Tensor& tc, const Tensor& xhat, const Tensor& rstd,
                                       const Tensor& chat, const Tensor& rstdc,
                                       const Tensor& meani, const Tensor& rstdi) {
  const int64_t nT = dy.size(0), B = dy.size(1), H = dy.size(2), G = 4 * H;
  const bool ln = g_hh.has_value() && g_hh->defined();
  const bool lnc = g_c.has_value() && g_c->defined();
  const bool lni = g_ih.has_value() && g_ih->defined();
  const int64_t* len = ptr_or_null<int64_t>(lengths);
  const T* noise_p = ptr_or_null<T>(noise);
  const int64_t noise_rows = noise_p ? noise->size(0) : 0;
  const T* zm = ptr_or_null<T>(zmask);
  const T zp = static_cast<T>(zoneout);
  auto opts = dy.options();
  // d gates, which the input norm's backward turns into d x_proj in place (row by row, after the
  // recurrent side has read it); without that norm the two are one.
  Tensor dgates = scratch({nT, B, G}, opts);
  Tensor dA = ln || lni ? scratch({nT, B, G}, opts) : dgates;  // d (h * noise) W_hh^T
  Tensor Gh = dhT.clone(), Gc = dcT.clone();
  Tensor mmres = at::zeros({B, H}, opts);
  // Columns: d b_hh (G, also d b_ih), d g_hh (G), d g_c (H), d b_c (H), d g_ih (G).
  const ThreadSums<T> sums(3 * G + 2 * H, opts);
  const T* xp_p = xp.data_ptr<T>();
  const T* gih = ptr_or_null<T>(g_ih);
  const T* ghh = ptr_or_null<T>(g_hh);
  const T* gc = ptr_or_null<T>(g_c);
  const T* w_p = w_hh.data_ptr<T>();
  T* Gh_p = Gh.data_ptr<T>();
  T* Gc_p = Gc.data_ptr<T>();
  T* mm_p = mmres.data_ptr<T>();
  for (int64_t t = nT - 1; t >= 0; --t) {
    const T* dyt = slot<T>(dy, t);
    const T* ab_all = slot<T>(acts, t);
    const T* tc_all = slot<T>(tc, t);
    const T* cprev = slot<T>(cs, t);
    T* dg_all = slot<T>(dgates, t);
    T* dA_all = slot<T>(dA, t);
    const T* xh_all = ln ? slot<T>(xhat, t) : nullptr;
    const T* rs_all = ln ? slot<T>(rstd, t) : nullptr;
    const T* ch_all = lnc ? slot<T>(chat, t) : nullptr;
    const T* rsc_all = lnc ? slot<T>(rstdc, t) : nullptr;
    const T* mi_all = lni ? slot<T>(meani, t) : nullptr;
    const T* rsi_all = lni ? slot<T>(rstdi, t) : nullptr;
    const bool first = (t == nT - 1);
    parallel_rows(B, grain(B, G), [&](int64_t b0, int64_t b1) RNNKIT_INLINE {
      std::vector<T> dc(H), dco(H), zfill(H, zp), kcb(H), khb(H), xi(lni ? G : 0);
      for (int64_t b = b0; b < b1; ++b) {
        T* gh = Gh_p + b * H;
        T* gcb = Gc_p + b * H;
        const T* nz = noise_p ? noise_p + (noise_rows == 1 ? 0 : b) * H : nullptr;
        if (!first) {  // finish the previous step's dh: the GEMM half, through the dropout mask
          const T* m = mm_p + b * H;
          if (nz) {
            RNNKIT_IVDEP
            for (int64_t j = 0; j < H; ++j) gh[j] += nz[j] * m[j];
          } else {
            RNNKIT_IVDEP
            for (int64_t j = 0; j < H; ++j) gh[j] += m[j];
          }
        }
        T* dgb = dg_all + b * G;
        if (len && t >= len[b]) {  // padding: the state passes through untouched
          std::fill(dgb, dgb + G, T(0));
          if (ln || lni) std::fill(dA_all + b * G, dA_all + (b + 1) * G, T(0));
          continue;
        }
        const T* ab = ab_all + b * G;
        const T* tcb = tc_all + b * H;
        const T* cpb = cprev + b * H;
        const T* dyb = dyt + b * H;
        const T* zc = zm ? keep_row(zm + ((t * 2 + 0) * B + b) * H, zp, kcb.data(), H) : zfill.data();
        const T* zh = zm ? keep_row(zm + ((t * 2 + 1) * B + b) * H, zp, khb.data(), H) : zfill.data();
        RNNKIT_IVDEP
        for (int64_t j = 0; j < H; ++j) {
          const T dh = gh[j] + dyb[j];
          const T kh = zh[j], kc = zc[j];
          const T dhraw = (T(1) - kh) * dh;
          gh[j] = kh * dh;
          dc[j] = (T(1) - kc) * gcb[j];
          gcb[j] = kc * gcb[j];
          const T so = ab[3 * H + j], tcj = tcb[j];
          dgb[3 * H + j] = dhraw * tcj * so * (T(1) - so);
          dco[j] = dhraw * so * (T(1) - tcj * tcj);
        }
        T* acc = sums.row();
        if (lnc) {
          const T* chb = ch_all + b * H;
          T* adg = acc + 2 * G;
          T* adb = acc + 2 * G + H;
          RNNKIT_IVDEP
          for (int64_t j = 0; j < H; ++j) {
            adg[j] += dco[j] * chb[j];
            adb[j] += dco[j];
          }
          RNNKIT_IVDEP
          for (int64_t j = 0; j < H; ++j) dco[j] *= gc[j];
          ln_row_backward(dco.data(), ch_all + b * H, rsc_all[b], H);
        }
        RNNKIT_IVDEP
        for (int64_t j = 0; j < H; ++j) {
          const T dcr = dc[j] + dco[j];
          const T si = ab[j], sf = ab[H + j], tg = ab[2 * H + j];
          dgb[j] = dcr * tg * si * (T(1) - si);
          dgb[H + j] = dcr * cpb[j] * sf * (T(1) - sf);
          dgb[2 * H + j] = dcr * si * (T(1) - tg * tg);
          gcb[j] += dcr * sf;
        }
        RNNKIT_IVDEP
        for (int64_t j = 0; j < G; ++j) acc[j] += dgb[j];
        if (ln) {
          T* dab = dA_all + b * G;
          const T* xhb = xh_all + b * G;
          T* adg = acc + G;
          RNNKIT_IVDEP
          for (int64_t j = 0; j < G; ++j) {
            adg[j] += dgb[j] * xhb[j];
            dab[j] = dgb[j] * ghh[j];
          }
          ln_row_backward(dab, xhb, rs_all[b], G);
        } else if (lni) {
          std::copy(dgb, dgb + G, dA_all + b * G);
        }
        if (lni) {
          input_row_backward(dgb, xp_p + (t * B + b) * G, gih, mi_all[b], rsi_all[b], xi.data(),
                             acc + 2 * G + 2 * H, G);
        }
      }
    });
    gemm_dw(B, G, H, dA_all, w_p, mm_p);
  }
  if (noise_p) {
    Gh.add_(mmres * *noise);
  } else {
    Gh.add_(mmres);
  }
  Tensor dW = at::mm(dA.view({nT * B, G}).t(), ht.reshape({nT * B, H}));
  Tensor db = sums.total(0, G);
  Tensor dg = ln ? sums.total(G, G) : Tensor();
  Tensor dgc = lnc ? sums.total(2 * G, H) : Tensor();
  Tensor dbc = lnc ? sums.total(2 * G + H, H) : Tensor();
  Tensor dgi = lni ? sums.total(2 * G + 2 * H, G) : Tensor();
  return {dgates, Gh, Gc, dW, db, dg, dgc, dbc, dgi};
}

// --- GRU -----------------------------------------------------------------------------------------
//
//   x      = [LN_ih(x_proj_t) * g_ih | x_proj_t] + b_ih
//   hh     = [LN_hh(A) * g_hh | A] + b_hh,  A = (h_{t-1} * noise) W_hh^T       (one GEMM)
//   r      = sigmoid(x_r + hh_r)    z = sigmoid(x_z + hh_z)    n = tanh(x_n + r * hh_n)
//   h      = n + z (h_{t-1} - n),   h_t = zoneout(h_{t-1}, h)
//
// Saved per step: r, z, n, hh_n (as acts (B, 4H)), the normalised A with its 1/std, the input
// norm's mean and 1/std, the states. x_proj = W_ih x without the bias.

template <typename T>
std::vector<Tensor> gru_forward_impl(const Tensor& xp, const Tensor& h0, const Tensor& w_hh,
                                     const Opt& b_ih, const Opt& g_ih, const Opt& b_hh,
                                     const Opt& g_hh, const Opt& noise, const Opt& zmask,
                                     double zoneout, const Opt& lengths, bool save) {
  const Common k = read_common(xp, h0, noise, zmask, zoneout, lengths, save);
  const int64_t nT = k.T, B = k.B, H = k.H, G = 3 * H;
  const bool ln = g_hh.has_value() && g_hh->defined();
  const bool lni = g_ih.has_value() && g_ih->defined();
  const int64_t S = save ? nT : 1;
  auto opts = xp.options();
  Tensor out = scratch({nT, B, H}, opts);
  Tensor hs = scratch({save ? nT + 1 : 2, B, H}, opts);
  Tensor ht = k.noise ? scratch({S, B, H}, opts) : hs;
  Tensor acts = scratch({S, B, 4 * H}, opts);
  Tensor xhat = ln ? scratch({S, B, G}, opts) : scratch({0}, opts);
  Tensor rstd = ln ? scratch({S, B}, opts) : scratch({0}, opts);
  Tensor meani = lni ? scratch({S, B}, opts) : scratch({0}, opts);
  Tensor rstdi = lni ? scratch({S, B}, opts) : scratch({0}, opts);
  Tensor A = scratch({B, G}, opts);
  hs[0].copy_(h0);
  if (k.noise) ht[0].copy_(h0 * *noise);
  const T* noise_p = static_cast<const T*>(k.noise);
  const T* w_p = w_hh.data_ptr<T>();
  const T* xp_p = xp.data_ptr<T>();
  const T* bih = ptr_or_null<T>(b_ih);
  const T* gih = ptr_or_null<T>(g_ih);
  const T* bhh = ptr_or_null<T>(b_hh);
  const T* ghh = ptr_or_null<T>(g_hh);
  const T* zm = static_cast<const T*>(k.zmask);
  const T zp = static_cast<T>(zoneout);
  T* A_p = A.data_ptr<T>();
  for (int64_t t = 0; t < nT; ++t) {
    const int64_t s = save ? t : 0;
    const int64_t prev = save ? t : (t & 1), next = save ? t + 1 : ((t + 1) & 1);
    gemm_xwt(B, H, G, slot<T>(ht, k.noise ? s : prev), w_p, A_p);
    const T* hp = slot<T>(hs, prev);
    T* hn = slot<T>(hs, next);
    T* htn = k.noise ? slot<T>(ht, save ? std::min(t + 1, nT - 1) : 0) : nullptr;
    const bool write_ht = k.noise && (t + 1 < nT);
    T* y = slot<T>(out, t);
    T* act = slot<T>(acts, s);
    T* xh = ln ? slot<T>(xhat, s) : nullptr;
    T* rs = ln ? slot<T>(rstd, s) : nullptr;
    T* mi = lni ? slot<T>(meani, s) : nullptr;
    T* rsi = lni ? slot<T>(rstdi, s) : nullptr;
    parallel_rows(B, grain(B, G), [&](int64_t b0, int64_t b1) RNNKIT_INLINE {
      std::vector<T> hh(G), xin(G), zfill(H, zp), kzb(H);
      for (int64_t b = b0; b < b1; ++b) {
        const T* hpb = hp + b * H;
        T* hnb = hn + b * H;
        const T* nz = noise_p ? noise_p + (k.noise_rows == 1 ? 0 : b) * H : nullptr;
        if (k.len && t >= k.len[b]) {
          std::copy(hpb, hpb + H, hnb);
          std::fill(y + b * H, y + (b + 1) * H, T(0));
          if (ln) std::fill(xh + b * G, xh + (b + 1) * G, T(0));
          if (lni) mi[b] = rsi[b] = T(0);
          if (write_ht) {
            RNNKIT_IVDEP
            for (int64_t j = 0; j < H; ++j) htn[b * H + j] = hpb[j] * nz[j];
          }
          continue;
        }
        const T* a = A_p + b * G;
        T* q = hh.data();
        if (ln) {
          rs[b] = ln_row(a, xh + b * G, G);
          const T* xhb = xh + b * G;
          RNNKIT_IVDEP
          for (int64_t j = 0; j < G; ++j) q[j] = xhb[j] * ghh[j] + (bhh ? bhh[j] : T(0));
        } else if (bhh) {
          RNNKIT_IVDEP
          for (int64_t j = 0; j < G; ++j) q[j] = a[j] + bhh[j];
        } else {
          std::copy(a, a + G, q);
        }
        const T* x = input_row(xp_p + (t * B + b) * G, gih, bih, xin.data(), lni ? mi + b : nullptr,
                               lni ? rsi + b : nullptr, G);
        T* ab = act + b * 4 * H;
        const T* zk = zm ? keep_row(zm + (t * B + b) * H, zp, kzb.data(), H) : zfill.data();
        RNNKIT_IVDEP
        for (int64_t j = 0; j < H; ++j) {
          const T r = sigm(x[j] + q[j]);
          const T z = sigm(x[H + j] + q[H + j]);
          const T n = tanh_(x[2 * H + j] + r * q[2 * H + j]);
          ab[j] = r;
          ab[H + j] = z;
          ab[2 * H + j] = n;
          ab[3 * H + j] = q[2 * H + j];
          const T hraw = n + z * (hpb[j] - n);
          const T kz = zk[j];
          const T hnew = hraw + kz * (hpb[j] - hraw);
          hnb[j] = hnew;
          y[b * H + j] = hnew;
        }
        if (write_ht) {
          RNNKIT_IVDEP
          for (int64_t j = 0; j < H; ++j) htn[b * H + j] = hnb[j] * nz[j];
        }
      }
    });
  }
  const int64_t last = save ? nT : (nT & 1);
  Tensor hT = hs.select(0, last).clone();
  if (!save) return {out, hT};
  Tensor ht_saved = k.noise ? ht : hs.narrow(0, 0, nT);
  return {out, hT, ht_saved, hs, acts, xhat, rstd, meani, rstdi};
}

template <typename T>
std::vector<Tensor> gru_backward_impl(const Tensor& dy, const Tensor& dhT, const Tensor& xp,
                                      const Tensor& w_hh, const Opt& g_ih, const Opt& g_hh,
                                      const Opt& noise, const Opt& zmask, double zoneout,
                                      const Opt& lengths, const Tensor& ht, const Tensor& hs,
                                      const Tensor& acts, const Tensor& xhat, const Tensor& rstd,
                                      const Tensor& meani, const Tensor& rstdi) {
  const int64_t nT = dy.size(0), B = dy.size(1), H = dy.size(2), G = 3 * H;
  const bool ln = g_hh.has_value() && g_hh->defined();
  const bool lni = g_ih.has_value() && g_ih->defined();
  const int64_t* len = ptr_or_null<int64_t>(lengths);
  const T* noise_p = ptr_or_null<T>(noise);
  const int64_t noise_rows = noise_p ? noise->size(0) : 0;
  const T* zm = ptr_or_null<T>(zmask);
  const T zp = static_cast<T>(zoneout);
  auto opts = dy.options();
  Tensor dxp = scratch({nT, B, G}, opts);
  Tensor dhh = scratch({nT, B, G}, opts);  // d (LN_hh(A) * g + b_hh), the biased product
  Tensor dA = ln ? scratch({nT, B, G}, opts) : dhh;
  Tensor Gh = dhT.clone();
  Tensor mmres = at::zeros({B, H}, opts);
  const ThreadSums<T> sums(4 * G, opts);  // d b_hh, d g_hh, d b_ih, d g_ih
  const T* xp_p = xp.data_ptr<T>();
  const T* gih = ptr_or_null<T>(g_ih);
  const T* ghh = ptr_or_null<T>(g_hh);
  const T* w_p = w_hh.data_ptr<T>();
  T* Gh_p = Gh.data_ptr<T>();
  T* mm_p = mmres.data_ptr<T>();
  for (int64_t t = nT - 1; t >= 0; --t) {
    const T* dyt = slot<T>(dy, t);
    const T* ab_all = slot<T>(acts, t);
    const T* hprev = slot<T>(hs, t);
    T* dx_all = slot<T>(dxp, t);
    T* dhh_all = slot<T>(dhh, t);
    T* dA_all = slot<T>(dA, t);
    const T* xh_all = ln ? slot<T>(xhat, t) : nullptr;
    const T* rs_all = ln ? slot<T>(rstd, t) : nullptr;
    const T* mi_all = lni ? slot<T>(meani, t) : nullptr;
    const T* rsi_all = lni ? slot<T>(rstdi, t) : nullptr;
    const bool first = (t == nT - 1);
    parallel_rows(B, grain(B, G), [&](int64_t b0, int64_t b1) RNNKIT_INLINE {
      std::vector<T> zfill(H, zp), kzb(H), xi(lni ? G : 0);
      for (int64_t b = b0; b < b1; ++b) {
        T* gh = Gh_p + b * H;
        const T* nz = noise_p ? noise_p + (noise_rows == 1 ? 0 : b) * H : nullptr;
        if (!first) {
          const T* m = mm_p + b * H;
          if (nz) {
            RNNKIT_IVDEP
            for (int64_t j = 0; j < H; ++j) gh[j] += nz[j] * m[j];
          } else {
            RNNKIT_IVDEP
            for (int64_t j = 0; j < H; ++j) gh[j] += m[j];
          }
        }
        T* dxb = dx_all + b * G;
        T* dhb = dhh_all + b * G;
        if (len && t >= len[b]) {
          std::fill(dxb, dxb + G, T(0));
          std::fill(dhb, dhb + G, T(0));
          if (ln) std::fill(dA_all + b * G, dA_all + (b + 1) * G, T(0));
          continue;
        }
        const T* ab = ab_all + b * 4 * H;
        const T* hpb = hprev + b * H;
        const T* dyb = dyt + b * H;
        const T* zk = zm ? keep_row(zm + (t * B + b) * H, zp, kzb.data(), H) : zfill.data();
        RNNKIT_IVDEP
        for (int64_t j = 0; j < H; ++j) {
          const T dh = gh[j] + dyb[j];
          const T kz = zk[j];
          const T dhraw = (T(1) - kz) * dh;
          const T r = ab[j], z = ab[H + j], n = ab[2 * H + j], hn = ab[3 * H + j];
          const T dn = dhraw * (T(1) - z);
          const T dz = dhraw * (hpb[j] - n);
          gh[j] = kz * dh + dhraw * z;
          const T dpn = dn * (T(1) - n * n);
          const T dpr = dpn * hn * r * (T(1) - r);
          const T dpz = dz * z * (T(1) - z);
          dxb[j] = dpr;
          dxb[H + j] = dpz;
          dxb[2 * H + j] = dpn;
          dhb[j] = dpr;
          dhb[H + j] = dpz;
          dhb[2 * H + j] = dpn * r;
        }
        T* acc = sums.row();
        T* adbi = acc + 2 * G;
        RNNKIT_IVDEP
        for (int64_t j = 0; j < G; ++j) {
          acc[j] += dhb[j];
          adbi[j] += dxb[j];
        }
        if (ln) {
          T* dab = dA_all + b * G;
          const T* xhb = xh_all + b * G;
          T* adg = acc + G;
          RNNKIT_IVDEP
          for (int64_t j = 0; j < G; ++j) {
            adg[j] += dhb[j] * xhb[j];
            dab[j] = dhb[j] * ghh[j];
          }
          ln_row_backward(dab, xhb, rs_all[b], G);
        }
        if (lni) {
          input_row_backward(dxb, xp_p + (t * B + b) * G, gih, mi_all[b], rsi_all[b], xi.data(),
                             acc + 3 * G, G);
        }
      }
    });
    gemm_dw(B, G, H, dA_all, w_p, mm_p);
  }
  if (noise_p) {
    Gh.add_(mmres * *noise);
  } else {
    Gh.add_(mmres);
  }
  Tensor dW = at::mm(dA.view({nT * B, G}).t(), ht.reshape({nT * B, H}));
  Tensor db = sums.total(0, G);
  Tensor dg = ln ? sums.total(G, G) : Tensor();
  Tensor dbi = sums.total(2 * G, G);
  Tensor dgi = lni ? sums.total(3 * G, G) : Tensor();
  return {dxp, Gh, dW, db, dg, dbi, dgi};
}

// --- minGRU / minLSTM: h_t = a_t h_{t-1} + b_t, coefficients from x_proj --------------------------
//
// minGRU  (k, u):       a = sigmoid(-k), b = sigmoid(k) g(u)
// minLSTM (p_f, p_i, u): a = f / (f + i), b = i / (f + i) g(u), f = sigmoid(p_f), i = sigmoid(p_i)
// with g(u) = u + 1/2 for u >= 0, else sigmoid(u). One forward pass and one reverse pass, each
// thread owning a block of batch rows for all T steps (one fork per call).

template <typename T>
RNNKIT_INLINE inline void min_coeffs(int64_t gates, const T* x, int64_t H, int64_t j, T& a, T& bb, T& gu) {
  const T u = x[(gates - 1) * H + j];
  gu = u >= T(0) ? u + T(0.5) : sigm(u);
  if (gates == 2) {
    const T z = sigm(x[j]);
    a = T(1) - z;
    bb = z * gu;
  } else {
    // a = f / (f + i) = (1 + e^-p_i) / (2 + e^-p_i + e^-p_f): no 0/0 when both gates underflow.
    const T ef = exp_(-x[j]), ei = exp_(-x[H + j]);
    a = (T(1) + ei) / (T(2) + ei + ef);
    bb = (T(1) - a) * gu;
  }
}

template <typename T>
Tensor min_scan_forward_impl(const Tensor& xp, const Tensor& h0, int64_t gates) {
  const int64_t nT = xp.size(0), B = xp.size(1), H = h0.size(1), W = gates * H;
  Tensor out = scratch({nT, B, H}, xp.options());
  const T* x = xp.data_ptr<T>();
  const T* h0p = h0.data_ptr<T>();
  T* y = out.data_ptr<T>();
  parallel_rows(B, 1, [&](int64_t b0, int64_t b1) RNNKIT_INLINE {
    std::vector<T> h(H);
    for (int64_t b = b0; b < b1; ++b) {
      std::copy(h0p + b * H, h0p + (b + 1) * H, h.begin());
      for (int64_t t = 0; t < nT; ++t) {
        const T* xr = x + (t * B + b) * W;
        T* yr = y + (t * B + b) * H;
        if (gates == 2) {
          RNNKIT_IVDEP
          for (int64_t j = 0; j < H; ++j) {
            const T u = xr[H + j];
            const T gu = u >= T(0) ? u + T(0.5) : sigm(u);
            const T z = sigm(xr[j]);
            h[j] = (T(1) - z) * h[j] + z * gu;
            yr[j] = h[j];
          }
        } else {
          RNNKIT_IVDEP
          for (int64_t j = 0; j < H; ++j) {
            T a, bb, gu;
            min_coeffs(gates, xr, H, j, a, bb, gu);
            h[j] = a * h[j] + bb;
            yr[j] = h[j];
          }
        }
      }
    }
  });
  return out;
}

template <typename T>
std::vector<Tensor> min_scan_backward_impl(const Tensor& dy, const Tensor& xp, const Tensor& h0,
                                           const Tensor& out, int64_t gates) {
  const int64_t nT = xp.size(0), B = xp.size(1), H = h0.size(1), W = gates * H;
  Tensor dxp = at::empty_like(xp);
  Tensor dh0 = at::empty_like(h0);
  const T* x = xp.data_ptr<T>();
  const T* h0p = h0.data_ptr<T>();
  const T* y = out.data_ptr<T>();
  const T* g = dy.data_ptr<T>();
  T* dx = dxp.data_ptr<T>();
  T* dh0p = dh0.data_ptr<T>();
  parallel_rows(B, 1, [&](int64_t b0, int64_t b1) RNNKIT_INLINE {
    std::vector<T> carry(H);
    for (int64_t b = b0; b < b1; ++b) {
      std::fill(carry.begin(), carry.end(), T(0));
      for (int64_t t = nT - 1; t >= 0; --t) {
        const T* xr = x + (t * B + b) * W;
        const T* hp = t > 0 ? y + ((t - 1) * B + b) * H : h0p + b * H;
        const T* gr = g + (t * B + b) * H;
        T* dxr = dx + (t * B + b) * W;
        if (gates == 2) {
          RNNKIT_IVDEP
          for (int64_t j = 0; j < H; ++j) {
            const T gt = gr[j] + carry[j];
            const T u = xr[H + j];
            const T su = sigm(u);
            const T gu = u >= T(0) ? u + T(0.5) : su;
            const T dgu = u >= T(0) ? T(1) : su * (T(1) - su);
            const T z = sigm(xr[j]);
            dxr[j] = gt * z * (T(1) - z) * (gu - hp[j]);
            dxr[H + j] = gt * z * dgu;
            carry[j] = gt * (T(1) - z);
          }
        } else {
          RNNKIT_IVDEP
          for (int64_t j = 0; j < H; ++j) {
            const T gt = gr[j] + carry[j];
            T a, bb, gu;
            min_coeffs(gates, xr, H, j, a, bb, gu);
            const T u = xr[2 * H + j];
            const T su = sigm(u);
            const T dgu = u >= T(0) ? T(1) : su * (T(1) - su);
            const T gd = gt * a * (T(1) - a) * (gu - hp[j]);  // d h / d d
            const T ef = exp_(-xr[j]), ei = exp_(-xr[H + j]);
            dxr[j] = -gd * ef / (T(1) + ef);  // d d / d p_f = -(1 - f)
            dxr[H + j] = gd * ei / (T(1) + ei);
            dxr[2 * H + j] = gt * (T(1) - a) * dgu;
            carry[j] = gt * a;
          }
        }
      }
      std::copy(carry.begin(), carry.end(), dh0p + b * H);
    }
  });
  return {dxp, dh0};
}

// --- dispatch ------------------------------------------------------------------------------------

#define RNNKIT_DISPATCH(dtype, NAME, ...)                                   \
  if ((dtype) == at::kFloat) return NAME<float>(__VA_ARGS__);               \
  if ((dtype) == at::kDouble) return NAME<double>(__VA_ARGS__);             \
  TORCH_CHECK(false, "rnnkit fused: float32 or float64 only, got ", (dtype))

std::vector<Tensor> lstm_forward(const Tensor& xp, const Tensor& h0, const Tensor& c0,
                                 const Tensor& w_hh, const Opt& b_ih, const Opt& g_ih,
                                 const Opt& b_hh, const Opt& g_hh, const Opt& g_c, const Opt& b_c,
                                 const Opt& noise, const Opt& zmask, double zoneout,
                                 const Opt& lengths, bool save) {
  check(xp, "x_proj", 3);
  check(h0, "h0", 2);
  check(c0, "c0", 2);
  check(w_hh, "weight_hh", 2);
  TORCH_CHECK(xp.size(2) == 4 * h0.size(1) && w_hh.size(1) == h0.size(1),
              "rnnkit fused lstm: sizes disagree");
  RNNKIT_DISPATCH(xp.scalar_type(), lstm_forward_impl, xp, h0, c0, w_hh, b_ih, g_ih, b_hh, g_hh,
                  g_c, b_c, noise, zmask, zoneout, lengths, save);
}

std::vector<Tensor> lstm_backward(const Tensor& dy, const Tensor& dhT, const Tensor& dcT,
                                  const Tensor& xp, const Tensor& w_hh, const Opt& g_ih,
                                  const Opt& g_hh, const Opt& g_c, const Opt& noise,
                                  const Opt& zmask, double zoneout, const Opt& lengths,
                                  const Tensor& ht, const Tensor& cs, const Tensor& acts,
                                  const Tensor& tc, const Tensor& xhat, const Tensor& rstd,
                                  const Tensor& chat, const Tensor& rstdc, const Tensor& meani,
                                  const Tensor& rstdi) {
  check(dy, "grad_out", 3);
  check(xp, "x_proj", 3);
  RNNKIT_DISPATCH(dy.scalar_type(), lstm_backward_impl, dy, dhT, dcT, xp, w_hh, g_ih, g_hh, g_c,
                  noise, zmask, zoneout, lengths, ht, cs, acts, tc, xhat, rstd, chat, rstdc,
                  meani, rstdi);
}

std::vector<Tensor> gru_forward(const Tensor& xp, const Tensor& h0, const Tensor& w_hh,
                                const Opt& b_ih, const Opt& g_ih, const Opt& b_hh,
                                const Opt& g_hh, const Opt& noise, const Opt& zmask,
                                double zoneout, const Opt& lengths, bool save) {
  check(xp, "x_proj", 3);
  check(h0, "h0", 2);
  check(w_hh, "weight_hh", 2);
  TORCH_CHECK(xp.size(2) == 3 * h0.size(1) && w_hh.size(1) == h0.size(1),
              "rnnkit fused gru: sizes disagree");
  RNNKIT_DISPATCH(xp.scalar_type(), gru_forward_impl, xp, h0, w_hh, b_ih, g_ih, b_hh, g_hh, noise,
                  zmask, zoneout, lengths, save);
}

std::vector<Tensor> gru_backward(const Tensor& dy, const Tensor& dhT, const Tensor& xp,
                                 const Tensor& w_hh, const Opt& g_ih, const Opt& g_hh,
                                 const Opt& noise, const Opt& zmask, double zoneout,
                                 const Opt& lengths, const Tensor& ht, const Tensor& hs,
                                 const Tensor& acts, const Tensor& xhat, const Tensor& rstd,
                                 const Tensor& meani, const Tensor& rstdi) {
  check(dy, "grad_out", 3);
  check(xp, "x_proj", 3);
  RNNKIT_DISPATCH(dy.scalar_type(), gru_backward_impl, dy, dhT, xp, w_hh, g_ih, g_hh, noise, zmask,
                  zoneout, lengths, ht, hs, acts, xhat, rstd, meani, rstdi);
}

Tensor min_scan_forward(const Tensor& xp, const Tensor& h0, int64_t gates) {
  check(xp, "x_proj", 3);
  check(h0, "h0", 2);
  TORCH_CHECK(gates == 2 || gates == 3, "rnnkit min scan: gates must be 2 or 3");
  TORCH_CHECK(xp.size(2) == gates * h0.size(1), "rnnkit min scan: sizes disagree");
  RNNKIT_DISPATCH(xp.scalar_type(), min_scan_forward_impl, xp, h0, gates);
}

std::vector<Tensor> min_scan_backward(const Tensor& dy, const Tensor& xp, const Tensor& h0,
                                      const Tensor& out, int64_t gates) {
  check(dy, "grad_out", 3);
  RNNKIT_DISPATCH(xp.scalar_type(), min_scan_backward_impl, dy, xp, h0, out, gates);
}

}  // namespace

TORCH_LIBRARY(rnnkit, m) {
  m.def("lstm_forward", &lstm_forward);
  m.def("lstm_backward", &lstm_backward);
  m.def("gru_forward", &gru_forward);
  m.def("gru_backward", &gru_backward);
  m.def("min_scan_forward", &min_scan_forward);
  m.def("min_scan_backward", &min_scan_backward);
}
