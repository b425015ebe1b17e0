/* Memory-safety smoke run (build with: make asan): train steps, eval, and inference on tiny T, M and hybrid models. */
#include <stdio.h>
#include <stdlib.h>
#include "nanorag.h"

int main(void) {
  const char *pats[] = {"TT", "MM", "TMT", "TMMT"};
  for (int th = 1; th <= 2; th++) {
    nr_set_threads(th);
    for (int p = 0; p < 4; p++) {
      int32_t ic[NR_CFG_N_INT] = {37, 0, 16, 4, 2, 4, 4, 2, 0, p == 2, 64, 64};
      ic[NR_CFG_N_LAYER] = 0;
      for (const char *c = pats[p]; *c; c++) ic[NR_CFG_N_LAYER]++;
      float fc[NR_FCFG_N] = {10000, 15, 1e-6f};
      nr_model *m = nr_model_new(ic, NR_CFG_N_INT, fc, NR_FCFG_N, pats[p], 1);
      if (!m) { printf("new: %s\n", nr_last_error()); return 1; }
      float *P = nr_model_params(m);
      for (int64_t i = 0; i < nr_model_num_params(m); i++) P[i] += 0.01f * (float)((i * 7919) % 13 - 6);
      int B = 2, T = 9;
      int32_t tok[64], tgt[64];
      float w[64];
      for (int i = 0; i < B * T; i++) { tok[i] = (i * 5) % 37; tgt[i] = (i * 3 + 1) % 37; w[i] = 0.5f; }
      tgt[3] = -1;
      double out[2];
      for (int s = 0; s < 3; s++) {
        if (nr_step(m, tok, tgt, w, B, T, 1.0f, out)) { printf("step: %s\n", nr_last_error()); return 1; }
        float hp[NR_HP_N] = {0.1f, 0.01f, 0.02f, 0.003f, 0.8f, 0.95f, 1e-10f, 0, 0.95f, 0, 1, 5};
        float gn;
        if (nr_optim_step(m, hp, NR_HP_N, &gn)) { printf("optim: %s\n", nr_last_error()); return 1; }
      }
      float lp[64];
      nr_eval(m, tok, tgt, NULL, B, T, out, lp);
      float *lg = malloc(sizeof(float) * B * T * 37);
      nr_logits(m, tok, B, T, lg);
      nr_state *st = nr_state_new(m, B, 20);
      nr_state_forward(m, st, tok, 5, lg, 1);
      nr_state_forward(m, st, tok, 1, lg, 0);
      nr_state_free(st);
      float emb[64];
      nr_embed(m, tok, NULL, 1, T, emb);
      printf("%s th=%d loss %.4f\n", pats[p], th, out[0] / out[1]);
      free(lg);
      nr_model_free(m);
    }
  }
  return 0;
}
