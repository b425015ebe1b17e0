/* The CUDA model: the host side (layout, init, tensor table, host mirrors) is the CPU model; here live
 * the device copies (params, grads, moments, bf16 params), the activation arena, the forward/backward
 * passes over the block pattern, and nr_step / nr_eval / nr_logits / nr_embed. */
#include <stdlib.h>
#include <string.h>
#include "common.cuh"

#define NORM_CHUNK 65536

/* the fixed device buffers, in the order wrap_host sizes them */
enum { FX_P, FX_G, FX_M, FX_V, FX_PB, FX_MW, FX_NORM, FX_COS, FX_SIN, FX_N };

static void free_host_side(nr_model *m) {
  free(m->hnorm); free(m->h_emb); free(m->h_loss); free(m->L);
  cpuhost_model_free(m->host);
  free(m);
}

extern "C" void nr_model_free(nr_model *m) {
  if (!m) return;
  cudaStreamSynchronize(g_stream);
  cudaFree(m->p); cudaFree(m->g); cudaFree(m->om); cudaFree(m->ov); cudaFree(m->pb);
  cudaFree(m->rope_cos); cudaFree(m->rope_sin); cudaFree(m->mw); cudaFree(m->dnorm); cudaFree(m->arena);
  free_host_side(m);
}

/* The device model around a host model: layout, options, and the byte sizes of the fixed device
 * buffers (fx). No CUDA call, so the GPU check can plan memory on a machine without a GPU. */
static nr_model *wrap_host(cpu_model *h, size_t fx[FX_N]) {
  nr_model *m = (nr_model *)calloc(1, sizeof *m);
  m->host = h;
  cpuhost_layout(h, &m->c, NULL);
  m->L = (Lay *)calloc(m->c.L, sizeof(Lay));
  HostLayer *hl = (HostLayer *)calloc(m->c.L, sizeof(HostLayer));
  cpuhost_layout(h, &m->c, hl);
  int hasT = 0;
  for (int i = 0; i < m->c.L; i++) {
    m->L[i].h = hl[i];
    hasT |= hl[i].kind == 'T';
  }
  free(hl);
  if (hasT && m->c.hd > 256) {
    nr_fail("config: the CUDA build supports head_dim <= 256, got %d", m->c.hd);
    free_host_side(m);
    return NULL;
  }
  const char *fp = getenv("NANORAG_CUDA_FP32"), *at = getenv("NANORAG_CUDA_ATTN");
  m->fp32 = fp && *fp && *fp != '0';
  m->attn_gemm = !m->fp32 && !(at && !strcmp(at, "flash"));
  size_t n = m->c.nparams, mw = 0;
  for (int i = 0; i < cpuhost_model_num_tensors(h); i++)
    if (cpuhost_model_tensor_group(h, i) == NR_GROUP_MATRIX) {
      int rows = cpuhost_model_tensor_dim(h, i, 0), cols = cpuhost_model_tensor_dim(h, i, 1);
      if (strstr(cpuhost_model_tensor_name(h, i), "in_proj")) rows /= 2;
      size_t w = muon_workspace(rows, cols);
      mw = w > mw ? w : mw;
    }
  size_t rope = hasT ? (size_t)m->c.seq_len * (m->c.hd / 2) * 4 : 0;
  size_t sizes[FX_N] = {n * 4, n * 4, n * 4, n * 4, n * 2, mw * 4 + 64, (n + NORM_CHUNK - 1) / NORM_CHUNK * 8, rope, rope};
  memcpy(fx, sizes, sizeof sizes);
  return m;
}

extern "C" nr_model *nr_model_new(const int32_t *icfg, int n_icfg, const float *fcfg, int n_fcfg, const char *pattern,
                                  uint32_t seed) {
  if (cu_init()) return NULL;
  cpu_model *h = cpuhost_model_new(icfg, n_icfg, fcfg, n_fcfg, pattern, seed);
  size_t fx[FX_N];
  nr_model *m = h ? wrap_host(h, fx) : NULL;
  if (!m) return NULL;
  void **dst[FX_N] = {(void **)&m->p, (void **)&m->g, (void **)&m->om, (void **)&m->ov, (void **)&m->pb,
                      (void **)&m->mw, (void **)&m->dnorm, (void **)&m->rope_cos, (void **)&m->rope_sin};
  bool ok = true;
  for (int i = 0; i < FX_N && ok; i++) {
    ok = !fx[i] || cudaMalloc(dst[i], fx[i]) == cudaSuccess;
    m->fixed_bytes += fx[i];
  }
  m->hnorm = (double *)malloc(fx[FX_NORM]);
  if (!ok || !m->hnorm) {
    nr_fail("out of GPU memory for %zu parameters (%.1f MB)", m->c.nparams, m->fixed_bytes / 1e6);
    cudaGetLastError();
    nr_model_free(m);
    return NULL;
  }
  if (fx[FX_COS]) {
    cudaMemcpyAsync(m->rope_cos, m->c.rope_cos, fx[FX_COS], cudaMemcpyHostToDevice, g_stream);
    cudaMemcpyAsync(m->rope_sin, m->c.rope_sin, fx[FX_SIN], cudaMemcpyHostToDevice, g_stream);
  }
  if (nr_model_upload(m)) {
    nr_model_free(m);
    return NULL;
  }
  return m;
}

/* host mirrors <-> device */
static int copy_state(nr_model *m, cudaMemcpyKind kind) {
  float *hp[4] = {cpuhost_model_params(m->host), cpuhost_model_grads(m->host), cpuhost_model_opt_m(m->host),
                  cpuhost_model_opt_v(m->host)};
  float *dp[4] = {m->p, m->g, m->om, m->ov};
  size_t bytes = m->c.nparams * sizeof(float);
  for (int i = 0; i < 4; i++)
    if (kind == cudaMemcpyHostToDevice) cudaMemcpyAsync(dp[i], hp[i], bytes, kind, g_stream);
    else cudaMemcpyAsync(hp[i], dp[i], bytes, kind, g_stream);
  if (kind == cudaMemcpyHostToDevice) params_to_bf16(m);
  return cu_check(kind == cudaMemcpyHostToDevice ? "nr_model_upload" : "nr_model_download");
}
extern "C" int nr_model_upload(nr_model *m) { return copy_state(m, cudaMemcpyHostToDevice); }
extern "C" int nr_model_download(nr_model *m) { return copy_state(m, cudaMemcpyDeviceToHost); }

extern "C" int64_t nr_model_num_params(const nr_model *m) { return (int64_t)m->c.nparams; }
extern "C" float *nr_model_params(nr_model *m) { return cpuhost_model_params(m->host); }
extern "C" float *nr_model_grads(nr_model *m) { return cpuhost_model_grads(m->host); }
extern "C" float *nr_model_opt_m(nr_model *m) { return cpuhost_model_opt_m(m->host); }
extern "C" float *nr_model_opt_v(nr_model *m) { return cpuhost_model_opt_v(m->host); }
extern "C" int64_t nr_model_opt_step(const nr_model *m) { return cpuhost_model_opt_step(m->host); }
extern "C" void nr_model_set_opt_step(nr_model *m, int64_t s) { cpuhost_model_set_opt_step(m->host, s); }
extern "C" int nr_model_num_tensors(const nr_model *m) { return cpuhost_model_num_tensors(m->host); }
extern "C" const char *nr_model_tensor_name(const nr_model *m, int i) { return cpuhost_model_tensor_name(m->host, i); }
extern "C" int nr_model_tensor_ndim(const nr_model *m, int i) { return cpuhost_model_tensor_ndim(m->host, i); }
extern "C" int nr_model_tensor_dim(const nr_model *m, int i, int d) { return cpuhost_model_tensor_dim(m->host, i, d); }
extern "C" int64_t nr_model_tensor_offset(const nr_model *m, int i) { return cpuhost_model_tensor_offset(m->host, i); }
extern "C" int64_t nr_model_tensor_numel(const nr_model *m, int i) { return cpuhost_model_tensor_numel(m->host, i); }
extern "C" int nr_model_tensor_group(const nr_model *m, int i) { return cpuhost_model_tensor_group(m->host, i); }
extern "C" int64_t nr_model_act_bytes(const nr_model *m) { return (int64_t)(m->fixed_bytes + m->arena_need); }

extern "C" void nr_zero_grad(nr_model *m) {
  cudaMemsetAsync(m->g, 0, m->c.nparams * sizeof(float), g_stream);
  memset(cpuhost_model_grads(m->host), 0, m->c.nparams * sizeof(float));
  cudaStreamSynchronize(g_stream);
}

extern "C" int nr_set_recompute(nr_model *m, int on) {
  if (on != 0 && on != 1) return nr_fail("nr_set_recompute: expected 0 or 1, got %d", on);
  if (m->recompute != on) m->B = 0; /* re-carve the arena on the next call */
  m->recompute = on;
  return 0;
}

/* ---- the activation arena ---- */
#define MAXZ(a, b) ((a) > (b) ? (a) : (b))
/* Carve (or, with base == NULL, measure) the arena: one pass for both, so they agree. With
 * recomputation, the layers of one kind share one set of activations and keep only their inputs. */
static size_t carve(nr_model *m, char *base, int B, int T, int train) {
  const HostConfig *c = &m->c;
  size_t BT = (size_t)B * T, C = c->C, hd = c->hd, qd = (size_t)(c->H + 2 * c->Hkv) * hd, di = c->di, N = c->N,
         xw = c->R + 2 * N, F = c->F, nch = (T + 31) / 32, nseg = (BT + SEG_ROWS - 1) / SEG_ROWS, V = c->V;
  size_t off = 0;
#define TAKE(n) (off += (((size_t)(n) * 4 + 255) & ~(size_t)255), base ? (float *)(base + off - (((size_t)(n) * 4 + 255) & ~(size_t)255)) : NULL)
  int shared = m->recompute && train;
  Lay ts = {}, ms = {}, fs = {}; /* the shared sets */
  bool haveT = false, haveM = false, haveF = false;
  for (int i = 0; i < c->L; i++) {
    Lay *l = &m->L[i];
    bool isT = l->h.kind == 'T', mk = !shared || !(isT ? haveT : haveM);
    Lay *dst = isT ? &ts : &ms;
    (isT ? haveT : haveM) = true;
    if (mk) {
      dst->xn1 = TAKE(BT * C); dst->rstd1 = TAKE(BT);
      if (l->h.kind == 'T') {
        dst->qkv = TAKE(BT * qd); dst->qkr = TAKE(BT * (c->H + c->Hkv)); dst->att = TAKE(BT * c->H * hd);
        dst->lse = TAKE((size_t)B * c->H * T);
      } else {
        dst->xz = TAKE(BT * 2 * di); dst->u = TAKE(BT * di); dst->delta = TAKE(BT * di); dst->y = TAKE(BT * di);
        dst->o = TAKE(BT * di); dst->xdbl = TAKE(BT * xw);
      }
    }
    if (l->h.has_mlp && (!shared || !haveF)) {
      haveF = true;
      fs.xn2 = TAKE(BT * C); fs.rstd2 = TAKE(BT); fs.fc = TAKE(BT * F); fs.act = TAKE(BT * F);
    }
    HostLayer h = l->h;
    *l = *dst;
    l->h = h;
    if (h.has_mlp) { l->xn2 = fs.xn2; l->rstd2 = fs.rstd2; l->fc = fs.fc; l->act = fs.act; }
    if (!shared) { /* every layer its own: start fresh sets */
      ts = Lay{}; ms = Lay{}; fs = Lay{};
    }
    l->xin = shared ? TAKE(BT * C) : NULL;
  }
  m->x = TAKE(BT * C); m->x0n = TAKE(BT * C); m->xf = TAKE(BT * C); m->xlast = TAKE((size_t)B * C);
  m->rstd0 = TAKE(BT); m->rstdf = TAKE(BT); m->lossrow = TAKE(BT); m->w = TAKE(BT); m->mask = TAKE(BT);
  m->tok = (int32_t *)TAKE(BT); m->tgt = (int32_t *)TAKE(BT); m->emb_idx = (int32_t *)TAKE(3 * BT + 1);
  size_t CH = BT < (size_t)cls_rows(c->V) ? BT : (size_t)cls_rows(c->V); /* the classifier's chunk, at most the batch */
  m->logits = TAKE(CH * V);
  m->att_s = NULL;
  m->att_p = NULL;
  m->hch = TAKE((size_t)B * nch * N * di); m->sdl = TAKE((size_t)B * nch * di);
  bool anyM = false;
  for (int i = 0; i < c->L; i++) anyM |= m->L[i].h.kind == 'M';
  m->red_cap = MAXZ((size_t)B * c->H * T, anyM ? scan_backward_scratch(B, T, (int)di, (int)N) : 0);
  m->red = TAKE(m->red_cap);
  m->part_cap = MAXZ(MAXZ(BT * ((di + 31) / 32) * 2 * N, nseg * di * (c->K + 1)), nseg * MAXZ(di, C));
  m->part = TAKE(m->part_cap);
  m->xr = shared ? TAKE(BT * C) : NULL;
  bool gemm_attn = train && m->attn_gemm; /* the tensor-core attention's buffers, when any layer is T */
  for (int i = 0; i < c->L && gemm_attn; i++)
    if (m->L[i].h.kind == 'T') {
      size_t tt = (size_t)c->Hkv * T * T;
      m->att_s = TAKE(tt);
      m->att_p = (bf16 *)TAKE((tt + 1) / 2);
      gemm_attn = false;
    }
  if (train) {
    m->dx = TAKE(BT * C); m->dxn = TAKE(BT * C);
    m->db1 = TAKE(BT * MAXZ(MAXZ(F, c->H * hd), 2 * di));
    m->db2 = TAKE(BT * MAXZ(qd, xw));
    m->dd1 = TAKE(BT * di); m->dd2 = TAKE(BT * di); m->dd3 = TAKE(BT * di);
  } else {
    m->dx = m->dxn = m->db1 = m->db2 = m->dd1 = m->dd2 = m->dd3 = NULL;
  }
  size_t wmax = MAXZ(MAXZ(MAXZ(C, qd), MAXZ(F, 2 * di)), MAXZ(xw, (size_t)c->H * hd));
  m->bf_cap = MAXZ(BT * wmax, CH * V);
  m->bfa = (bf16 *)TAKE((m->bf_cap + 1) / 2);
  m->bfb = (bf16 *)TAKE((m->bf_cap + 1) / 2);
#undef TAKE
  return off;
}

int acts_ensure(nr_model *m, int B, int T, int train) {
  if (m->arena && m->B == B && m->T == T && m->train == train) return 0;
  size_t need = carve(m, NULL, B, T, train);
  m->arena_need = need;
  if (need > m->arena_bytes) {
    cudaStreamSynchronize(g_stream);
    cudaFree(m->arena);
    m->arena = NULL;
    m->arena_bytes = 0;
    m->B = 0;
    if (cudaMalloc(&m->arena, need) != cudaSuccess) {
      cudaGetLastError();
      return nr_fail("out of GPU memory: activations for B=%d T=%d need %.1f MB (recomputation: %s)", B, T,
                     need / 1e6, m->recompute ? "on" : "off");
    }
    m->arena_bytes = need;
  }
  size_t BT = (size_t)B * T;
  free(m->h_emb);
  free(m->h_loss);
  m->h_emb = (int32_t *)malloc(sizeof(int32_t) * (m->c.V + 3 * BT + 1));
  m->h_loss = (float *)malloc(sizeof(float) * BT);
  if (!m->h_emb || !m->h_loss) return nr_fail("out of host memory for B=%d T=%d", B, T);
  carve(m, (char *)m->arena, B, T, train);
  m->B = B;
  m->T = T;
  m->train = train;
  return 0;
}

/* ---- passes ---- */
void model_forward(nr_model *m, int B, int T, nr_state *s) {
  const HostConfig *c = &m->c;
  int BT = B * T;
  embedding_forward(m->xf, m->tok, m->p + c->wte, BT, c->C);
  rmsnorm_forward(m->x0n, m->rstd0, m->xf, BT, c->C, c->eps);
  cudaMemcpyAsync(m->x, m->x0n, sizeof(float) * BT * c->C, cudaMemcpyDeviceToDevice, g_stream);
  prof_mark(PROF_EMBED);
  for (int i = 0; i < c->L; i++) {
    Lay *l = &m->L[i];
    if (l->xin) cudaMemcpyAsync(l->xin, m->x, sizeof(float) * BT * c->C, cudaMemcpyDeviceToDevice, g_stream);
    if (l->h.kind == 'T') attn_block_forward(m, l, m->x, B, T, s, i);
    else mamba_block_forward(m, l, m->x, B, T, s, i);
  }
  rmsnorm_forward(m->xf, m->rstdf, m->x, BT, c->C, c->eps);
  prof_mark(PROF_EMBED);
}

/* expects d(xf) in m->dxn */
void model_backward(nr_model *m, const int32_t *tok, int B, int T) {
  const HostConfig *c = &m->c;
  int BT = B * T;
  rmsnorm_backward(m->dx, m->dxn, m->xf, m->rstdf, BT, c->C, 0);
  for (int i = c->L - 1; i >= 0; i--) {
    Lay *l = &m->L[i];
    if (l->xin) { /* recomputation: rerun the block from its saved input on a scratch residual */
      cudaMemcpyAsync(m->xr, l->xin, sizeof(float) * BT * c->C, cudaMemcpyDeviceToDevice, g_stream);
      prof_mark(PROF_EMBED);
      if (l->h.kind == 'T') attn_block_forward(m, l, m->xr, B, T, NULL, i);
      else mamba_block_forward(m, l, m->xr, B, T, NULL, i);
    }
    if (l->h.kind == 'T') attn_block_backward(m, l, B, T);
    else mamba_block_backward(m, l, B, T);
  }
  rmsnorm_backward(m->dxn, m->dx, m->x0n, m->rstd0, BT, c->C, 0);
  embedding_backward(m, tok, BT);
  prof_mark(PROF_EMBED);
}

/* the batch onto the device (weights: 1 per valid target when NULL) */
static int upload_batch(nr_model *m, const int32_t *tok, const int32_t *tgt, const float *w, int B, int T, int train) {
  if (cpuhost_check_batch(m->host, tok, tgt, B, T)) return -1;
  if (acts_ensure(m, B, T, train)) return -1;
  size_t BT = (size_t)B * T;
  cudaMemcpyAsync(m->tok, tok, BT * 4, cudaMemcpyHostToDevice, g_stream);
  if (tgt) cudaMemcpyAsync(m->tgt, tgt, BT * 4, cudaMemcpyHostToDevice, g_stream);
  if (w) cudaMemcpyAsync(m->w, w, BT * 4, cudaMemcpyHostToDevice, g_stream);
  return 0;
}

/* out[0] = sum w CE (rows with w != 0), out[1] = sum w over valid targets, in the CPU build's order */
static int loss_sums(nr_model *m, const int32_t *tgt, const float *w, int BT, double *out, const char *where) {
  cudaMemcpyAsync(m->h_loss, m->lossrow, sizeof(float) * BT, cudaMemcpyDeviceToHost, g_stream);
  if (cu_check(where)) return -1;
  double s = 0, ws = 0;
  for (int r = 0; r < BT; r++) {
    if (tgt[r] < 0) continue;
    double wr = w ? w[r] : 1.0;
    if (wr != 0) s += wr * m->h_loss[r];
    ws += wr;
  }
  if (out) { out[0] = s; out[1] = ws; }
  return 0;
}

extern "C" int nr_step(nr_model *m, const int32_t *tok, const int32_t *tgt, const float *w, int B, int T,
                       float grad_scale, double *out) {
  prof_mark(PROF_START);
  if (upload_batch(m, tok, tgt, w, B, T, 1)) return -1;
  model_forward(m, B, T, NULL);
  classifier(m, m->xf, m->tgt, w ? m->w : NULL, B * T, grad_scale, m->dxn, NULL, NULL);
  prof_mark(PROF_CLASSIFIER);
  model_backward(m, tok, B, T);
  return loss_sums(m, tgt, w, B * T, out, "nr_step");
}

extern "C" int nr_eval(nr_model *m, const int32_t *tok, const int32_t *tgt, const float *w, int B, int T, double *out,
                       float *token_logprobs) {
  if (upload_batch(m, tok, tgt, w, B, T, 0)) return -1;
  model_forward(m, B, T, NULL);
  float *tlp = token_logprobs ? m->mask : NULL; /* the mask slot is free during eval */
  classifier(m, m->xf, m->tgt, w ? m->w : NULL, B * T, 0.0f, NULL, tlp, NULL);
  if (tlp) cudaMemcpyAsync(token_logprobs, tlp, sizeof(float) * B * T, cudaMemcpyDeviceToHost, g_stream);
  return loss_sums(m, tgt, w, B * T, out, "nr_eval");
}

extern "C" int nr_logits(nr_model *m, const int32_t *tok, int B, int T, float *out) {
  if (upload_batch(m, tok, NULL, NULL, B, T, 0)) return -1;
  model_forward(m, B, T, NULL);
  classifier(m, m->xf, NULL, NULL, B * T, 0.0f, NULL, NULL, out);
  return cu_check("nr_logits");
}

/* out[b, c] = sum_t mask x / sum_t mask (0 when the mask sums to 0) */
__global__ void masked_mean_k(float *out, const float *x, const float *mask, int B, int T, int C) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= B * C) return;
  int b = i / C, c = i % C;
  float s = 0.0f, ws = 0.0f;
  for (int t = 0; t < T; t++) {
    float w = mask ? mask[b * T + t] : 1.0f;
    if (w == 0.0f) continue;
    s += w * x[((long)b * T + t) * C + c];
    ws += w;
  }
  out[i] = ws != 0.0f ? s / ws : 0.0f;
}

extern "C" int nr_embed(nr_model *m, const int32_t *tok, const float *mask, int B, int T, float *out) {
  if (upload_batch(m, tok, NULL, NULL, B, T, 0)) return -1;
  if (mask) cudaMemcpyAsync(m->mask, mask, sizeof(float) * B * T, cudaMemcpyHostToDevice, g_stream);
  model_forward(m, B, T, NULL);
  int C = m->c.C;
  masked_mean_k<<<cdiv((long)B * C, 256), 256, 0, g_stream>>>(m->xlast, m->xf, mask ? m->mask : NULL, B, T, C);
  cudaMemcpyAsync(out, m->xlast, sizeof(float) * B * C, cudaMemcpyDeviceToHost, g_stream);
  return cu_check("nr_embed");
}

/* Test hook for the GPU check (not in nanorag.h): the device bytes a training step at (B, T) will
 * allocate, computed on the host without a GPU: out[0] the fixed buffers, out[1] the activation arena,
 * out[2] the arena with recomputation. */
extern "C" int nrcuda_plan_bytes(const int32_t *icfg, int n_icfg, const float *fcfg, int n_fcfg, const char *pattern,
                                 int B, int T, int64_t out[3]) {
  cpu_model *h = cpuhost_model_new(icfg, n_icfg, fcfg, n_fcfg, pattern, 0);
  size_t fx[FX_N], fixed = 0;
  nr_model *m = h ? wrap_host(h, fx) : NULL;
  if (!m) return -1;
  for (int i = 0; i < FX_N; i++) fixed += fx[i];
  out[0] = (int64_t)fixed;
  for (int rc = 0; rc < 2; rc++) {
    m->recompute = rc;
    out[1 + rc] = (int64_t)carve(m, NULL, B, T, 1);
  }
  free_host_side(m);
  return 0;
}

/* Test hook for the GPU check (not in nanorag.h): frees the activation arena (the next call allocates
 * one of exactly the size it needs), so device memory in use can be measured per shape. */
extern "C" void nrcuda_release_arena(nr_model *m) {
  cudaStreamSynchronize(g_stream);
  cudaFree(m->arena);
  m->arena = NULL;
  m->arena_bytes = m->arena_need = 0;
  m->B = 0;
}
