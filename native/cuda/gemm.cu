/* GEMMs through cuBLAS (cublasGemmEx, loaded at run time). Row-major C = op(A) op(B) is column-major
 * C^T = op(B)^T op(A)^T, so the operands swap. Default precision: bf16 operands, fp32 accumulation and
 * fp32 output; weights come from the bf16 copy of the params, activations are converted into one of two
 * bf16 operand buffers (Muon converts its own, into its workspace). fp32 parity mode uses fp32 operands. */
#include "common.cuh"

enum { R_32F = 0, R_16BF = 14, COMPUTE_32F = 68, OP_N = 0, OP_T = 1, ALGO_DEFAULT = -1 };

__global__ void f2bf_2d(bf16 *dst, const float *src, int rows, int cols, int ld) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x, n = (long)rows * cols;
  if (i < n) dst[i] = __float2bfloat16(src[(i / cols) * ld + i % cols]);
}

__global__ void f2bf(bf16 *dst, const float *src, size_t n) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = __float2bfloat16(src[i]);
}

void to_bf16(bf16 *dst, const float *src, size_t n) { f2bf<<<cdiv((long)n, 256), 256, 0, g_stream>>>(dst, src, n); }

void params_to_bf16(nr_model *m) { to_bf16(m->pb, m->p, m->c.nparams); }

/* a bf16 view of op-operand X (rows x cols stored, leading dim ld): the params' bf16 copy, or a converted copy */
static const bf16 *as_bf16(nr_model *m, const float *X, int rows, int cols, int *ld, bf16 *buf) {
  if (X >= m->p && X < m->p + m->c.nparams) return m->pb + (X - m->p);
  if ((size_t)rows * cols > m->bf_cap) {
    cu_note_cublas(-1, "operand larger than the bf16 buffer");
    return buf;
  }
  f2bf_2d<<<cdiv((long)rows * cols, 256), 256, 0, g_stream>>>(buf, X, rows, cols, *ld);
  *ld = cols;
  return buf;
}

void mm(nr_model *m, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
        int ldc, float beta, int prec) {
  if (M <= 0 || N <= 0) return;
  float one = 1.0f;
  if (K <= 0) { /* empty sum: C = beta C */
    cu_note_cublas(beta == 1.0f ? 0 : -1, "empty GEMM with beta != 1");
    return;
  }
  if (prec == MM_AUTO && m->fp32) prec = MM_F32;
  if (prec == MM_AUTO) {
    const bf16 *a = as_bf16(m, A, ta ? K : M, ta ? M : K, &lda, m->bfa);
    const bf16 *b = as_bf16(m, B, tb ? N : K, tb ? K : N, &ldb, m->bfb);
    mm_bf16(ta, tb, M, N, K, a, lda, b, ldb, C, ldc, beta);
    return;
  }
  int st = g_gemm_ex(g_cublas, tb ? OP_T : OP_N, ta ? OP_T : OP_N, N, M, K, &one, B, R_32F, ldb, A, R_32F, lda, &beta,
                     C, R_32F, ldc, COMPUTE_32F, ALGO_DEFAULT);
  cu_note_cublas(st, "cublasGemmEx");
}

void mm_bf16(int ta, int tb, int M, int N, int K, const bf16 *A, int lda, const bf16 *B, int ldb, float *C, int ldc,
             float beta) {
  float one = 1.0f;
  int st = g_gemm_ex(g_cublas, tb ? OP_T : OP_N, ta ? OP_T : OP_N, N, M, K, &one, B, R_16BF, ldb, A, R_16BF, lda,
                     &beta, C, R_32F, ldc, COMPUTE_32F, ALGO_DEFAULT);
  cu_note_cublas(st, "cublasGemmEx");
}

/* linear layer y = x W^T with W: N x K (the CPU's matmul_forward / backward_dx / backward_dw) */
void lin_fwd(nr_model *m, float *out, int ldo, const float *inp, int ldi, const float *W, int M, int N, int K,
             float beta) {
  mm(m, 0, 1, M, N, K, inp, ldi, W, K, out, ldo, beta, MM_AUTO);
}
void lin_dx(nr_model *m, float *dinp, int lddi, const float *dout, int lddo, const float *W, int M, int N, int K,
            float beta) {
  mm(m, 0, 0, M, K, N, dout, lddo, W, K, dinp, lddi, beta, MM_AUTO);
}
void lin_dw(nr_model *m, float *dW, const float *dout, int lddo, const float *inp, int ldi, int M, int N, int K) {
  mm(m, 1, 0, N, K, M, dout, lddo, inp, ldi, dW, K, 1.0f, MM_AUTO);
}

void mm_strided(int ta, int tb, int M, int N, int K, const bf16 *A, int lda, long long sA, const bf16 *B, int ldb,
                long long sB, float *C, int ldc, long long sC, float beta, int count) {
  float one = 1.0f;
  int st = g_gemm_sb(g_cublas, tb ? OP_T : OP_N, ta ? OP_T : OP_N, N, M, K, &one, B, R_16BF, ldb, sB, A, R_16BF, lda,
                     sA, &beta, C, R_32F, ldc, sC, count, COMPUTE_32F, ALGO_DEFAULT);
  cu_note_cublas(st, "cublasGemmStridedBatchedEx");
}
