/* MLP (nanochat): rmsnorm -> c_fc -> relu^2 -> c_proj, residual add. Backward of relu^2 is 2 relu(a) dy. */
#include "common.cuh"

__global__ void relu2_fwd_k(float *act, const float *fc, size_t n) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    float r = fmaxf(fc[i], 0.0f);
    act[i] = r * r;
  }
}

__global__ void relu2_bwd_k(float *d, const float *fc, size_t n) { /* d: d(act) in, d(fc) out */
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) d[i] = 2.0f * fmaxf(fc[i], 0.0f) * d[i];
}

void mlp_forward(nr_model *m, Lay *l, float *x, int BT) {
  int C = m->c.C, F = m->c.F;
  size_t n = (size_t)BT * F;
  rmsnorm_forward(l->xn2, l->rstd2, x, BT, C, m->c.eps);
  lin_fwd(m, l->fc, F, l->xn2, C, m->p + l->h.wfc, BT, F, C, 0.0f);
  relu2_fwd_k<<<cdiv((long)n, 256), 256, 0, g_stream>>>(l->act, l->fc, n);
  lin_fwd(m, x, C, l->act, F, m->p + l->h.wproj, BT, C, F, 1.0f);
  prof_mark(PROF_MLP);
}

void mlp_backward(nr_model *m, Lay *l, int BT) {
  int C = m->c.C, F = m->c.F;
  size_t n = (size_t)BT * F;
  lin_dw(m, m->g + l->h.wproj, m->dx, C, l->act, F, BT, C, F);
  float *dact = m->db1;
  lin_dx(m, dact, F, m->dx, C, m->p + l->h.wproj, BT, C, F, 0.0f);
  relu2_bwd_k<<<cdiv((long)n, 256), 256, 0, g_stream>>>(dact, l->fc, n);
  lin_dw(m, m->g + l->h.wfc, dact, F, l->xn2, C, BT, F, C);
  lin_dx(m, m->dxn, C, dact, F, m->p + l->h.wfc, BT, F, C, 0.0f);
  rmsnorm_backward(m->dx, m->dxn, l->xn2, l->rstd2, BT, C, 1);
  prof_mark(PROF_MLP);
}
