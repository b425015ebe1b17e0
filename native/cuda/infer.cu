/* Inference state on the GPU: a KV cache per T layer and conv + SSM state per M layer (one device
 * block), fed by prefill (Tn > 1) and decode (Tn == 1) through the same layer code as training.
 * Sampling runs on the host logits (the CPU build's nr_sample, shared). */
#include <stdlib.h>
#include <string.h>
#include "common.cuh"

extern "C" void nr_state_free(nr_state *s) {
  if (!s) return;
  cudaStreamSynchronize(g_stream);
  cudaFree(s->mem);
  free(s->kc); free(s->vc); free(s->conv); free(s->ssm);
  free(s);
}

extern "C" nr_state *nr_state_new(nr_model *m, int B, int max_len) {
  if (!m) { nr_fail("model handle is NULL"); return NULL; }
  if (B < 1 || max_len < 1) { nr_fail("state: B and max_len must be positive"); return NULL; }
  const HostConfig *c = &m->c;
  if (max_len > c->seq_len) {
    nr_fail("state: max_len %d exceeds the model's sequence_len %d", max_len, c->seq_len);
    return NULL;
  }
  nr_state *s = (nr_state *)calloc(1, sizeof *s);
  s->B = B; s->max_len = max_len; s->L = c->L;
  s->kc = (float **)calloc(c->L, sizeof(float *)); s->vc = (float **)calloc(c->L, sizeof(float *));
  s->conv = (float **)calloc(c->L, sizeof(float *)); s->ssm = (float **)calloc(c->L, sizeof(float *));
  size_t kv = (size_t)B * max_len * c->Hkv * c->hd, nc = (size_t)B * (c->K > 1 ? c->K - 1 : 1) * c->di,
         ns = (size_t)B * c->di * c->N, total = nc; /* + the conv-update scratch */
  for (int i = 0; i < c->L; i++) total += m->L[i].h.kind == 'T' ? 2 * kv : nc + ns;
  if (cudaMalloc(&s->mem, total * sizeof(float)) != cudaSuccess) {
    cudaGetLastError();
    nr_fail("out of GPU memory for an inference state of %.1f MB", total * 4.0 / 1e6);
    nr_state_free(s);
    return NULL;
  }
  float *p = s->mem;
  for (int i = 0; i < c->L; i++) {
    if (m->L[i].h.kind == 'T') { s->kc[i] = p; s->vc[i] = p + kv; p += 2 * kv; }
    else { s->conv[i] = p; s->ssm[i] = p + nc; p += nc + ns; }
  }
  s->tmp = p;
  s->bytes = (total - nc) * sizeof(float);
  return s;
}

extern "C" int nr_state_pos(const nr_state *s) { return s ? s->pos : -1; }
extern "C" int64_t nr_state_bytes(const nr_state *s) { return s ? (int64_t)s->bytes : 0; }
extern "C" void nr_state_reset(nr_state *s) {
  if (s) s->pos = 0;
}

extern "C" int nr_state_forward(nr_model *m, nr_state *s, const int32_t *tok, int Tn, float *logits,
                                int all_positions) {
  if (!m || !s) return nr_fail("model or state handle is NULL");
  if (Tn < 1) return nr_fail("state_forward: need at least one token");
  if (s->pos + Tn > s->max_len)
    return nr_fail("state is full: position %d + %d tokens exceeds max_len %d", s->pos, Tn, s->max_len);
  const HostConfig *c = &m->c;
  int B = s->B, V = c->V, C = c->C;
  for (int i = 0; i < B * Tn; i++)
    if (tok[i] < 0 || tok[i] >= V) return nr_fail("token %d at position %d is outside [0, %d)", tok[i], i, V);
  if (acts_ensure(m, B, Tn, 0)) return -1;
  if (s->pos == 0) /* fresh sequence: clear the recurrent state */
    for (int i = 0; i < c->L; i++)
      if (m->L[i].h.kind == 'M') {
        cudaMemsetAsync(s->conv[i], 0, sizeof(float) * B * (c->K > 1 ? c->K - 1 : 1) * c->di, g_stream);
        cudaMemsetAsync(s->ssm[i], 0, sizeof(float) * B * c->di * c->N, g_stream);
      }
  cudaMemcpyAsync(m->tok, tok, sizeof(int32_t) * B * Tn, cudaMemcpyHostToDevice, g_stream);
  model_forward(m, B, Tn, s);
  s->pos += Tn;
  if (all_positions) {
    classifier(m, m->xf, NULL, NULL, B * Tn, 0.0f, NULL, NULL, logits);
  } else { /* the last position of each row */
    cudaMemcpy2DAsync(m->xlast, sizeof(float) * C, m->xf + (size_t)(Tn - 1) * C, sizeof(float) * Tn * C,
                      sizeof(float) * C, B, cudaMemcpyDeviceToDevice, g_stream);
    classifier(m, m->xlast, NULL, NULL, B, 0.0f, NULL, NULL, logits);
  }
  return cu_check("nr_state_forward");
}
