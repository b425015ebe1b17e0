/* Mamba-1 selective scan (engine_spec.md 2.4-2.6) as a chunked parallel scan:
 *   a_t = exp(delta_t[d] A[d,n]),  h_t = a_t h_{t-1} + delta_t[d] B_t[n] u_t[d],
 *   y_t[d] = sum_n C_t[n] h_t[d,n] + D[d] u_t[d].
 * The sequence is cut into chunks of CL steps. Pass 1 runs every chunk from a zero state (in parallel)
 * and keeps its end state and its delta sum (the chunk's decay is exp(A sum delta)); pass 2 walks the
 * chunks of each (b, d, n) to turn those into every chunk's initial state; pass 3 reruns the chunks
 * from their true initial states and writes y. Nothing per step is stored. Backward mirrors it for the
 * adjoint lambda_t = gamma_t C_t + a_{t+1} lambda_{t+1}, which runs the other way: it reruns the forward's
 * passes 1-2 for the chunk states, runs each chunk's adjoint from zero, chains the chunks in reverse,
 * then reruns every chunk (in parallel) from its true states and adjoint with all the gradients. One
 * thread per channel; NM (16 or 64) bounds d_state. */
#include "common.cuh"

#define CL 32
#define SC_THREADS 128

/* the chunk's B_t, C_t rows into shared memory (all threads of the block call it) */
__device__ __forceinline__ void load_bc(float *Bs, float *Cs, const ScanArgs &s, int b, int t0, int len, int NM) {
  for (int i = threadIdx.x; i < len * s.N; i += blockDim.x) {
    int t = i / s.N, n = i % s.N;
    const float *r = s.BC + ((long)b * s.T + t0 + t) * s.bcs;
    Bs[t * NM + n] = r[n];
    Cs[t * NM + n] = r[s.N + n];
  }
}

/* a kernel's chunk (blockIdx.y) of batch row blockIdx.z: its B, C rows into shared memory, then a
 * barrier; returns the chunk's length */
__device__ __forceinline__ int enter_chunk(float *Bs, float *Cs, const ScanArgs &s, int NM) {
  int t0 = blockIdx.y * CL, len = min(CL, s.T - t0);
  load_bc(Bs, Cs, s, blockIdx.z, t0, len, NM);
  __syncthreads();
  return len;
}

/* A[n] = -exp(A_log[dd, n]) in the first N of NM slots (0 elsewhere, and for a channel past d) */
template <int NM>
__device__ __forceinline__ void decay_rates(float *A, const ScanArgs &s, int dd, bool ok) {
#pragma unroll
  for (int n = 0; n < NM; n++) A[n] = ok && n < s.N ? -expf(s.Alog[(long)dd * s.N + n]) : 0.0f;
}

/* pass 1 (write_y = 0) or pass 3 (write_y = 1) over one chunk per blockIdx.y */
template <int NM>
__global__ void __launch_bounds__(SC_THREADS) scan_chunk_k(ScanArgs s, int nch, int write_y) {
  __shared__ float Bs[CL * NM], Cs[CL * NM];
  int dd = blockIdx.x * blockDim.x + threadIdx.x, c = blockIdx.y, b = blockIdx.z, N = s.N, d = s.d;
  int t0 = c * CL, len = enter_chunk(Bs, Cs, s, NM);
  if (dd >= d) return;
  float A[NM], h[NM];
  decay_rates<NM>(A, s, dd, true);
  long hb = ((long)b * nch + c) * N * d + dd;
#pragma unroll
  for (int n = 0; n < NM; n++) h[n] = n < N && write_y ? s.hch[hb + (long)n * d] : 0.0f;
  float Dv = s.Dskip[dd], sd = 0.0f;
  for (int t = 0; t < len; t++) {
    long i = ((long)b * s.T + t0 + t) * d + dd;
    float dl = s.delta[i], uu = s.u[i], du = dl * uu, y = Dv * uu;
#pragma unroll
    for (int n = 0; n < NM; n++)
      if (n < N) {
        h[n] = __expf(dl * A[n]) * h[n] + du * Bs[t * NM + n];
        y += h[n] * Cs[t * NM + n];
      }
    sd += dl;
    if (write_y) s.y[i] = y;
  }
  if (write_y) return;
#pragma unroll
  for (int n = 0; n < NM; n++)
    if (n < N) s.hch[hb + (long)n * d] = h[n];
  s.sdl[((long)b * nch + c) * d + dd] = sd;
}

/* pass 2: chunk end states (from zero) -> chunk initial states, per (b, n, d); final state to hlast */
__global__ void scan_combine_k(ScanArgs s, int nch) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  int N = s.N, d = s.d;
  if (i >= (long)s.B * N * d) return;
  int dd = i % d, n = (i / d) % N, b = i / ((long)d * N);
  float A = -expf(s.Alog[(long)dd * N + n]);
  float H = s.h0 ? s.h0[((long)b * d + dd) * N + n] : 0.0f;
  for (int c = 0; c < nch; c++) {
    long k = (((long)b * nch + c) * N + n) * d + dd;
    float S = s.hch[k], P = __expf(A * s.sdl[((long)b * nch + c) * d + dd]);
    s.hch[k] = H;
    H = P * H + S;
  }
  if (s.hlast) s.hlast[((long)b * d + dd) * N + n] = H;
}

template <int NM>
static void chunk_states(const ScanArgs *s, int nch) {
  dim3 grid(cdiv(s->d, SC_THREADS), nch, s->B);
  scan_chunk_k<NM><<<grid, SC_THREADS, 0, g_stream>>>(*s, nch, 0);
  scan_combine_k<<<cdiv((long)s->B * s->N * s->d, 256), 256, 0, g_stream>>>(*s, nch);
}

void scan_forward(const ScanArgs *s) {
  int nch = cdiv(s->T, CL);
  dim3 grid(cdiv(s->d, SC_THREADS), nch, s->B);
  if (s->N <= 16) {
    chunk_states<16>(s, nch);
    scan_chunk_k<16><<<grid, SC_THREADS, 0, g_stream>>>(*s, nch, 1);
  } else {
    chunk_states<64>(s, nch);
    scan_chunk_k<64><<<grid, SC_THREADS, 0, g_stream>>>(*s, nch, 1);
  }
}

struct ScanGrads {
  const float *dy;
  float *du, *ddelta, *part, *pA, *pD, *lch;
};

/* Backward pass 1, one block row per chunk: the adjoint lambda_t = gamma_t C_t + a_{t+1} lambda_{t+1} run
 * back through the chunk from zero; lch gets a_first * lambda_first, the chunk's whole contribution to
 * the previous chunk's last step (what pass 2 chains, as the forward's pass 2 chains states). */
template <int NM>
__global__ void __launch_bounds__(SC_THREADS) scan_adjoint_k(ScanArgs s, ScanGrads g, int nch) {
  __shared__ float Bs[CL * NM], Cs[CL * NM];
  int dd = blockIdx.x * blockDim.x + threadIdx.x, c = blockIdx.y, b = blockIdx.z, N = s.N, d = s.d;
  int t0 = c * CL, len = enter_chunk(Bs, Cs, s, NM);
  if (dd >= d) return;
  float A[NM], lam[NM] = {};
  decay_rates<NM>(A, s, dd, true);
  float dnext = 0.0f; /* delta_{t+1}: a_{t+1} = exp(delta_{t+1} A[n]) (lambda is 0 past the chunk's end) */
  for (int t = len - 1; t >= 0; t--) {
    long i = ((long)b * s.T + t0 + t) * d + dd;
    float gm = g.dy[i];
#pragma unroll
    for (int n = 0; n < NM; n++)
      if (n < N) lam[n] = gm * Cs[t * NM + n] + __expf(dnext * A[n]) * lam[n];
    dnext = s.delta[i];
  }
  long hb = ((long)b * nch + c) * N * d + dd;
#pragma unroll
  for (int n = 0; n < NM; n++)
    if (n < N) g.lch[hb + (long)n * d] = __expf(dnext * A[n]) * lam[n];
}

/* pass 2, per (b, n, d), chunks in reverse: lch[c] becomes mu_c, the term added to lambda at chunk c's
 * last step (0 for the last chunk), by mu_{c-1} = lch[c] + exp(A sum_c delta) mu_c */
__global__ void scan_adjoint_combine_k(ScanArgs s, ScanGrads g, int nch) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  int N = s.N, d = s.d;
  if (i >= (long)s.B * N * d) return;
  int dd = i % d, n = (i / d) % N, b = i / ((long)d * N);
  float A = -expf(s.Alog[(long)dd * N + n]), mu = 0.0f;
  for (int c = nch - 1; c >= 0; c--) {
    long k = (((long)b * nch + c) * N + n) * d + dd;
    float S = g.lch[k];
    g.lch[k] = mu;
    mu = S + __expf(A * s.sdl[((long)b * nch + c) * d + dd]) * mu;
  }
}

/* pass 3, one block row per chunk, one thread per channel (warps are consecutive channels of one b):
 * the chunk's states recomputed into thread-local memory from its true initial state, then the adjoint
 * run back from mu_c with every gradient. dB/dC are summed over channels by warp reductions into
 * per-warp partial rows; dA/dD go to per-(b, chunk) partials: fixed order, no atomics. */
template <int NM>
__global__ void __launch_bounds__(SC_THREADS) scan_bwd_k(ScanArgs s, ScanGrads g, int nch) {
  __shared__ float Bs[CL * NM], Cs[CL * NM];
  int dd = blockIdx.x * blockDim.x + threadIdx.x, c = blockIdx.y, b = blockIdx.z, N = s.N, d = s.d;
  int lane = threadIdx.x & 31, nw = (d + 31) / 32, w = dd >> 5, t0 = c * CL, len = enter_chunk(Bs, Cs, s, NM);
  bool ok = dd < d;
  float A[NM], lam[NM], anext[NM], dA[NM], h0c[NM], hs[CL][NM];
  decay_rates<NM>(A, s, dd, ok);
  long hb = ((long)b * nch + c) * N * d + dd;
#pragma unroll
  for (int n = 0; n < NM; n++) {
    bool on = ok && n < N;
    h0c[n] = on ? s.hch[hb + (long)n * d] : 0.0f;
    lam[n] = on ? g.lch[hb + (long)n * d] : 0.0f;
    anext[n] = 1.0f; /* mu_c already carries the next chunk's first decay */
    dA[n] = 0.0f;
  }
  for (int t = 0; t < len; t++) { /* the chunk's states */
    long i = ((long)b * s.T + t0 + t) * d + dd;
    float dl = ok ? s.delta[i] : 0.0f, du = ok ? dl * s.u[i] : 0.0f;
#pragma unroll
    for (int n = 0; n < NM; n++)
      if (n < N) hs[t][n] = __expf(dl * A[n]) * (t ? hs[t - 1][n] : h0c[n]) + du * Bs[t * NM + n];
  }
  float Dv = ok ? s.Dskip[dd] : 0.0f, dD = 0.0f;
  for (int t = len - 1; t >= 0; t--) {
    long row = (long)b * s.T + t0 + t, i = row * d + dd;
    float gm = ok ? g.dy[i] : 0.0f, dl = ok ? s.delta[i] : 0.0f, uu = ok ? s.u[i] : 0.0f;
    float duacc = Dv * gm, ddl = 0.0f, dlu = dl * uu;
    dD += gm * uu;
    float *prow = g.part + (row * nw + w) * 2 * N;
#pragma unroll
    for (int n = 0; n < NM; n++)
      if (n < N) {
        float Bn = Bs[t * NM + n], l = gm * Cs[t * NM + n] + anext[n] * lam[n], a = __expf(dl * A[n]);
        float ah = a * (t ? hs[t - 1][n] : h0c[n]);
        duacc += l * dl * Bn;
        ddl += l * (A[n] * ah + Bn * uu);
        dA[n] += l * dl * ah;
        float vB = warp_sum(l * dlu), vC = warp_sum(gm * hs[t][n]);
        if (lane == 0 && w < nw) { /* a block's last warps can lie wholly past d: no row of theirs */
          prow[n] = vB;
          prow[N + n] = vC;
        }
        lam[n] = l;
        anext[n] = a;
      }
    if (ok) {
      g.du[i] = duacc;
      g.ddelta[i] = ddl;
    }
  }
  if (!ok) return;
  long pb = ((long)b * nch + c) * d + dd;
#pragma unroll
  for (int n = 0; n < NM; n++)
    if (n < N) g.pA[pb * N + n] = dA[n] * A[n]; /* d/dA_log = d/dA * A */
  g.pD[pb] = dD;
}

/* dB_t, dC_t: sum of the per-warp partial rows, in warp order */
__global__ void scan_dbc_k(float *dBC, int dbcs, const float *part, long BT, int nw, int N) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= BT * 2 * N) return;
  long row = i / (2 * N);
  int j = i % (2 * N);
  float s = 0.0f;
  for (int w = 0; w < nw; w++) s += part[(row * nw + w) * 2 * N + j];
  dBC[row * dbcs + j] = s;
}

template <int NM>
static void backward_passes(const ScanArgs *f, const ScanGrads *g, int nch) {
  dim3 grid(cdiv(f->d, SC_THREADS), nch, f->B);
  chunk_states<NM>(f, nch);
  scan_adjoint_k<NM><<<grid, SC_THREADS, 0, g_stream>>>(*f, *g, nch);
  scan_adjoint_combine_k<<<cdiv((long)f->B * f->N * f->d, 256), 256, 0, g_stream>>>(*f, *g, nch);
  scan_bwd_k<NM><<<grid, SC_THREADS, 0, g_stream>>>(*f, *g, nch);
}

size_t scan_backward_scratch(int B, int T, int d, int N) { return (size_t)B * cdiv(T, CL) * d * (2 * N + 1); }

void scan_backward(const ScanArgs *s, const float *dy, float *du, float *ddelta, float *dAlog, float *dD, float *dBC,
                   int dbcs, float *part, float *red) {
  int nch = cdiv(s->T, CL), N = s->N, d = s->d, nw = cdiv(d, 32);
  ScanArgs f = *s;
  f.h0 = NULL; /* the initial state is a constant (no gradient), as on the CPU */
  f.hlast = NULL;
  size_t segs = (size_t)s->B * nch;
  ScanGrads g = {dy, du, ddelta, part, red, red + segs * d * N, red + segs * d * (N + 1)};
  if (N <= 16) backward_passes<16>(&f, &g, nch);
  else backward_passes<64>(&f, &g, nch);
  long BT = (long)s->B * s->T;
  scan_dbc_k<<<cdiv(BT * 2 * N, 256), 256, 0, g_stream>>>(dBC, dbcs, part, BT, nw, N);
  reduce_segments(dAlog, g.pA, (int)segs, d * N); /* sums over the (batch row, chunk) partials, in order */
  reduce_segments(dD, g.pD, (int)segs, d);
}

/* ---- test hook for the GPU check: scan time alone (not part of nanorag.h) ---- */
__global__ void fill_k(float *x, size_t n, float lo, float hi, uint32_t seed) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  uint32_t h = (uint32_t)i * 2654435761u ^ seed;
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  x[i] = lo + (hi - lo) * (h & 0xffffff) / 16777216.0f;
}

/* ms[0], ms[1]: mean forward and backward milliseconds over reps (after one warm-up each) */
extern "C" int nrcuda_bench_scan(int B, int T, int d, int N, int reps, float *ms) {
  if (cu_init()) return -1;
  if (N > 64 || d < 1 || T < 1 || B < 1 || reps < 1) return nr_fail("bench_scan: bad shape");
  size_t BT = (size_t)B * T, nch = cdiv(T, CL), nw = cdiv(d, 32);
  size_t sz[] = {BT * d, BT * d, (size_t)d * N, (size_t)d, BT * 2 * N, BT * d, (size_t)B * nch * N * d,
                 (size_t)B * nch * d, BT * d, BT * d, BT * d, (size_t)d * N, (size_t)d, BT * 2 * N,
                 BT * nw * 2 * N, scan_backward_scratch(B, T, d, N)};
  const int K = sizeof sz / sizeof *sz;
  float *p[K];
  size_t total = 0;
  for (int i = 0; i < K; i++) total += sz[i];
  float *mem;
  if (cudaMalloc(&mem, total * 4) != cudaSuccess) return nr_fail("bench_scan: out of GPU memory");
  for (int i = 0, o = 0; i < K; o += sz[i], i++) p[i] = mem + o;
  float lo[] = {-1, 0.001f, 0, 0.5f, -1, 0, 0, 0, -1}, hi[] = {1, 0.1f, 2.7f, 1.5f, 1, 0, 0, 0, 1};
  for (int i = 0; i < 9; i++) fill_k<<<cdiv(sz[i], 256), 256, 0, g_stream>>>(p[i], sz[i], lo[i], hi[i], 17 * i + 1);
  ScanArgs s = {B, T, d, N, p[0], p[1], p[2], p[3], p[4], 2 * N, p[5], NULL, NULL, p[6], p[7]};
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  for (int pass = 0; pass < 2; pass++) {
    for (int r = -1; r < reps; r++) {
      if (r == 0) cudaEventRecord(e0, g_stream);
      if (pass == 0) scan_forward(&s);
      else scan_backward(&s, p[8], p[9], p[10], p[11], p[12], p[13], 2 * N, p[14], p[15]);
    }
    cudaEventRecord(e1, g_stream);
    cudaEventSynchronize(e1);
    cudaEventElapsedTime(&ms[pass], e0, e1);
    ms[pass] /= reps;
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(mem);
  return cu_check("bench_scan");
}
