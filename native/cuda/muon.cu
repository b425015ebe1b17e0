/* Muon (nanochat / Keller Jordan): Nesterov momentum, then the quintic Newton-Schulz orthogonalisation
 * (a, b, c) = (3.4445, -4.7750, 2.0315) through cuBLAS GEMMs on bf16 operands with fp32 accumulation, as
 * the reference Muon runs them (fp32 throughout in parity mode),
 * then p -= lr * sqrt(max(1, rows/cols)) * O, with optional decoupled weight decay p *= 1 - lr*wd.
 * X is kept as the wide orientation (mr x nc, mr <= nc), as on the CPU. */
#include "common.cuh"

#define MU_BLOCKS 256

/* floats: X, X2 (n), A, B2 (mr^2), the norm partials (MU_BLOCKS doubles), then bf16 copies of X, A, B2 */
size_t muon_workspace(int rows, int cols) {
  size_t n = (size_t)rows * cols, mr = rows < cols ? rows : cols;
  return 2 * n + 2 * mr * mr + 2 * MU_BLOCKS + 8 + (n + 2 * mr * mr) / 2 + 4 * 64; /* + 256-byte alignment */
}

/* buf = mom buf + (1-mom) g; u = (1-mom) g + mom buf into X (transposed when tr); partial sums of u^2 */
__global__ void muon_mom_k(float *X, float *buf, const float *g, size_t n, int rows, int cols, int tr, float mom,
                           float gs, double *part) {
  __shared__ double sh[256];
  double ss = 0;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    float gg = g[i] * gs, b = buf[i] = mom * buf[i] + (1.0f - mom) * gg, u = (1.0f - mom) * gg + mom * b;
    X[tr ? (i % cols) * rows + i / cols : i] = u;
    ss += (double)u * u;
  }
  ss = block_sum256_f64(ss, sh);
  if (threadIdx.x == 0) part[blockIdx.x] = ss;
}

/* X *= 1 / (||u|| + 1e-7), the norm summed from the partials in order by every thread */
__global__ void muon_scale_k(float *X, size_t n, const double *part) {
  __shared__ float inv;
  if (threadIdx.x == 0) {
    double s = 0;
    for (int k = 0; k < MU_BLOCKS; k++) s += part[k];
    inv = (float)(1.0 / (sqrt(s) + 1e-7));
  }
  __syncthreads();
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    X[i] *= inv;
}

/* B2 = b A + c B2, or into its bf16 copy Bb when there is one */
__global__ void muon_combine_k(float *B2, bf16 *Bb, const float *A, size_t n, float b, float c) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float v = b * A[i] + c * B2[i];
  if (Bb) Bb[i] = __float2bfloat16(v);
  else B2[i] = v;
}

static bf16 *align256(void *p) { return (bf16 *)(((uintptr_t)p + 255) & ~(uintptr_t)255); }

__global__ void muon_apply_k(float *p, const float *X, size_t n, int rows, int cols, int tr, float decay, float scale) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] = p[i] * decay - scale * X[tr ? (i % cols) * rows + i / cols : i];
}

void muon_update(nr_model *m, float *p, const float *g, float *buf, int rows, int cols, float lr, float mom, float wd,
                 int ns, float gs) {
  size_t n = (size_t)rows * cols;
  int tr = rows > cols, mr = tr ? cols : rows, nc = tr ? rows : cols, bf = !m->fp32;
  size_t mm2 = (size_t)mr * mr;
  float *X = m->mw, *X2 = X + n, *A = X2 + n, *B2 = A + mm2;
  double *part = (double *)(((uintptr_t)(B2 + mm2) + 7) & ~(uintptr_t)7);
  bf16 *Xb = align256(part + MU_BLOCKS), *Ab = align256(Xb + n), *Bb = align256(Ab + mm2);
  muon_mom_k<<<MU_BLOCKS, 256, 0, g_stream>>>(X, buf, g, n, rows, cols, tr, mom, gs, part);
  muon_scale_k<<<MU_BLOCKS, 256, 0, g_stream>>>(X, n, part);
  const float a = 3.4445f, b = -4.7750f, c = 2.0315f;
  for (int it = 0; it < ns; it++) {
    if (bf) {
      to_bf16(Xb, X, n);
      mm_bf16(0, 1, mr, mr, nc, Xb, nc, Xb, nc, A, mr, 0.0f); /* A = X X^T */
      to_bf16(Ab, A, mm2);
      mm_bf16(0, 0, mr, mr, mr, Ab, mr, Ab, mr, B2, mr, 0.0f); /* B2 = A A */
    } else {
      mm(m, 0, 1, mr, mr, nc, X, nc, X, nc, A, mr, 0.0f, MM_F32);
      mm(m, 0, 0, mr, mr, mr, A, mr, A, mr, B2, mr, 0.0f, MM_F32);
    }
    muon_combine_k<<<cdiv((long)mm2, 256), 256, 0, g_stream>>>(B2, bf ? Bb : NULL, A, mm2, b, c);
    cudaMemcpyAsync(X2, X, n * sizeof(float), cudaMemcpyDeviceToDevice, g_stream);
    if (bf) mm_bf16(0, 0, mr, nc, mr, Bb, mr, Xb, nc, X2, nc, a); /* X2 = a X + B2 X */
    else mm(m, 0, 0, mr, nc, mr, B2, mr, X, nc, X2, nc, a, MM_F32);
    float *t = X;
    X = X2;
    X2 = t;
  }
  float scale = lr * sqrtf(fmaxf(1.0f, (float)rows / (float)cols));
  muon_apply_k<<<cdiv((long)n, 256), 256, 0, g_stream>>>(p, X, n, rows, cols, tr, 1.0f - lr * wd, scale);
}
