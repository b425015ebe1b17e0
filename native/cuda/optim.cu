/* nr_optim_step on the GPU: global L2 gradient norm (fp64 partials over the CPU's 65536-parameter
 * chunks, summed in order on the host), clipping, AdamW or Muon per tensor group, zeroed gradients,
 * then a fresh bf16 copy of the parameters. */
#include <math.h>
#include <string.h>
#include "common.cuh"

#define NORM_CHUNK 65536

__global__ void sumsq_k(double *part, const float *g, size_t n) {
  __shared__ double sh[256];
  size_t b = (size_t)blockIdx.x * NORM_CHUNK, e = b + NORM_CHUNK < n ? b + NORM_CHUNK : n;
  double s = 0;
  for (size_t i = b + threadIdx.x; i < e; i += blockDim.x) s += (double)g[i] * g[i];
  s = block_sum256_f64(s, sh);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}

static int grad_norm(nr_model *m, double *out) {
  size_t n = m->c.nparams;
  int nch = (int)((n + NORM_CHUNK - 1) / NORM_CHUNK);
  sumsq_k<<<nch, 256, 0, g_stream>>>(m->dnorm, m->g, n);
  double *h = m->hnorm;
  cudaMemcpyAsync(h, m->dnorm, sizeof(double) * nch, cudaMemcpyDeviceToHost, g_stream);
  if (cu_check("gradient norm")) return -1;
  double ss = 0;
  for (int i = 0; i < nch; i++) ss += h[i];
  *out = ss;
  return 0;
}

extern "C" int nr_optim_step(nr_model *m, const float *hp, int n_hp, float *out_norm) {
  if (n_hp != NR_HP_N) return nr_fail("optimizer: expected %d hyper-parameters, got %d", NR_HP_N, n_hp);
  for (int i = 0; i < NR_HP_N; i++)
    if (!isfinite(hp[i])) return nr_fail("optimizer: hyper-parameter %d is not finite", i);
  double ss;
  prof_mark(PROF_START);
  if (grad_norm(m, &ss)) return -1;
  float norm = (float)sqrt(ss);
  if (out_norm) *out_norm = norm;
  if (!isfinite(norm)) {
    nr_zero_grad(m);
    return nr_fail("optimizer: gradient norm is not finite (%g); step skipped", norm);
  }
  float clip = hp[NR_HP_GRAD_CLIP], gs = clip > 0 && norm > clip ? clip / (norm + 1e-6f) : 1.0f;
  int64_t step = cpuhost_model_opt_step(m->host) + 1;
  cpuhost_model_set_opt_step(m->host, step);
  float b1 = hp[NR_HP_BETA1], b2 = hp[NR_HP_BETA2];
  float bc1 = 1.0f - powf(b1, (float)step), bc2 = 1.0f - powf(b2, (float)step);
  int ns = (int)hp[NR_HP_NS_STEPS];
  for (int i = 0; i < cpuhost_model_num_tensors(m->host); i++) {
    size_t off = (size_t)cpuhost_model_tensor_offset(m->host, i), n = (size_t)cpuhost_model_tensor_numel(m->host, i);
    float *p = m->p + off, *g = m->g + off, *mm_ = m->om + off, *vv = m->ov + off;
    int group = cpuhost_model_tensor_group(m->host, i);
    if (group == NR_GROUP_MATRIX) {
      int rows = cpuhost_model_tensor_dim(m->host, i, 0), cols = cpuhost_model_tensor_dim(m->host, i, 1);
      int parts = strstr(cpuhost_model_tensor_name(m->host, i), "in_proj") ? 2 : 1; /* x and z halves apart */
      int pr = rows / parts;
      for (int k = 0; k < parts; k++) {
        size_t o = (size_t)k * pr * cols;
        muon_update(m, p + o, g + o, mm_ + o, pr, cols, hp[NR_HP_LR_MATRIX], hp[NR_HP_MUON_MOMENTUM],
                    hp[NR_HP_MUON_WEIGHT_DECAY], ns, gs);
      }
    } else {
      float lr = hp[group == NR_GROUP_EMBED ? NR_HP_LR_EMBED : group == NR_GROUP_HEAD ? NR_HP_LR_HEAD : NR_HP_LR_VECTOR];
      float wd = group == NR_GROUP_VECTOR ? 0.0f : hp[NR_HP_WEIGHT_DECAY];
      adamw_update(p, g, mm_, vv, n, lr, b1, b2, hp[NR_HP_EPS], wd, bc1, bc2, gs);
    }
  }
  cudaMemsetAsync(m->g, 0, m->c.nparams * sizeof(float), g_stream);
  params_to_bf16(m);
  prof_mark(PROF_OPTIM);
  return cu_check("nr_optim_step");
}
