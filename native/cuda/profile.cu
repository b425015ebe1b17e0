/* Where a training step's GPU time goes, for the GPU check (test hooks, not in nanorag.h). Off by
 * default; when on, each section of the step ends with prof_mark(kind), which records a CUDA event, and
 * the time between consecutive events is charged to the later mark's kind. Events are only read when
 * the pool fills or the totals are asked for, so the marks do not synchronise the stream. */
#include "common.cuh"

#define PROF_EVENTS 4096

static int g_on, g_n;
static cudaEvent_t g_ev[PROF_EVENTS];
static int g_kind[PROF_EVENTS];
static double g_ms[PROF_N];

/* charge every recorded interval, then keep the last event as the start of the next one */
static void drain(void) {
  if (g_n == 0) return;
  cudaEventSynchronize(g_ev[g_n - 1]);
  for (int i = 1; i < g_n; i++) {
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, g_ev[i - 1], g_ev[i]);
    if (g_kind[i] >= 0) g_ms[g_kind[i]] += ms;
  }
  cudaEvent_t last = g_ev[g_n - 1];
  g_ev[g_n - 1] = g_ev[0];
  g_ev[0] = last;
  g_kind[0] = -1;
  g_n = 1;
}

void prof_mark(int kind) {
  if (!g_on) return;
  if (g_n == PROF_EVENTS) drain();
  if (!g_ev[g_n]) cudaEventCreate(&g_ev[g_n]);
  cudaEventRecord(g_ev[g_n], g_stream);
  g_kind[g_n++] = kind;
}

extern "C" void nrcuda_profile(int on) {
  drain();
  g_n = 0;
  g_on = on;
  for (int k = 0; k < PROF_N; k++) g_ms[k] = 0;
}

/* milliseconds per kind since the last read (PROF_N values, in ProfKind order); returns PROF_N */
extern "C" int nrcuda_profile_read(double *ms) {
  drain();
  for (int k = 0; k < PROF_N; k++) {
    ms[k] = g_ms[k];
    g_ms[k] = 0;
  }
  return PROF_N;
}
