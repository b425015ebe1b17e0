/* Deterministic reductions over rows: a first stage writes one partial row per segment of SEG_ROWS
 * rows, a second sums the segments in order (no atomics, so results do not depend on scheduling). */
#include "common.cuh"

__global__ void reduce_segments_k(float *out, const float *part, int nseg, int n) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= n) return;
  float s = 0.0f;
  for (int k = 0; k < nseg; k++) s += part[(size_t)k * n + j];
  out[j] += s;
}

void reduce_segments(float *out, const float *part, int nseg, int n) {
  reduce_segments_k<<<cdiv(n, 256), 256, 0, g_stream>>>(out, part, nseg, n);
}

__global__ void colsum_k(float *part, const float *X, int rows, int n, int ld) {
  int j = blockIdx.x * blockDim.x + threadIdx.x, seg = blockIdx.y;
  if (j >= n) return;
  int r1 = min(rows, (seg + 1) * SEG_ROWS);
  float s = 0.0f;
  for (int r = seg * SEG_ROWS; r < r1; r++) s += X[(size_t)r * ld + j];
  part[(size_t)seg * n + j] = s;
}

void colsum_add(float *out, const float *X, int rows, int n, int ld, float *part) {
  int nseg = cdiv(rows, SEG_ROWS);
  colsum_k<<<dim3(cdiv(n, 256), nseg), 256, 0, g_stream>>>(part, X, rows, n, ld);
  reduce_segments(out, part, nseg, n);
}
