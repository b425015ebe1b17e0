/* A small pthread pool (no OpenMP, so the single binary needs no libgomp). The calling thread is
 * worker 0 and takes tasks too. Tasks are claimed from an atomic counter; which thread runs which task
 * does not change results, because every task writes its own outputs. Workers spin briefly after a
 * job, then sleep on a condition variable. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>
#include "common.h"

#define MAX_THREADS 64
#define NSLOTS 4

static char g_err[512];
int nr_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_err, sizeof g_err, fmt, ap);
  va_end(ap);
  return -1;
}
const char *nr_last_error(void) { return g_err; }

static struct {
  int n;            /* threads including the caller */
  pthread_t th[MAX_THREADS];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  atomic_int gen;
  atomic_int next;
  atomic_int active;
  task_fn fn;
  void *ctx;
  int ntasks;
  int stop;
  int start_gen;
  int serial; /* pool_serial: run every task on the caller */
} P = {.n = 1, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static float *g_scratch[MAX_THREADS][NSLOTS];
static size_t g_scratch_n[MAX_THREADS][NSLOTS];

float *pool_scratch(int tid, int slot, size_t n) {
  if (g_scratch_n[tid][slot] < n) {
    free(g_scratch[tid][slot]);
    size_t cap = n + n / 4 + 64;
    g_scratch[tid][slot] = aligned_alloc(64, ((cap * 4 + 63) / 64) * 64);
    g_scratch_n[tid][slot] = cap;
  }
  return g_scratch[tid][slot];
}

static void run_tasks(int tid) {
  task_fn fn = P.fn;
  void *ctx = P.ctx;
  int nt = P.ntasks;
  for (;;) {
    int t = atomic_fetch_add(&P.next, 1);
    if (t >= nt) break;
    fn(ctx, t, tid);
  }
}

static void *worker(void *arg) {
  int tid = (int)(intptr_t)arg;
  int seen = P.start_gen; /* the generation when this thread was created */
  for (;;) {
    int spins = 0;
    while (atomic_load_explicit(&P.gen, memory_order_acquire) == seen && spins < 20000) {
      __builtin_ia32_pause();
      spins++;
    }
    if (atomic_load(&P.gen) == seen) {
      pthread_mutex_lock(&P.mu);
      while (atomic_load(&P.gen) == seen && !P.stop) pthread_cond_wait(&P.cv, &P.mu);
      pthread_mutex_unlock(&P.mu);
    }
    if (P.stop) return NULL;
    seen = atomic_load(&P.gen);
    run_tasks(tid);
    atomic_fetch_sub_explicit(&P.active, 1, memory_order_release);
  }
}

static void pool_stop(void) {
  if (P.n <= 1) return;
  pthread_mutex_lock(&P.mu);
  P.stop = 1;
  atomic_fetch_add(&P.gen, 1);
  pthread_cond_broadcast(&P.cv);
  pthread_mutex_unlock(&P.mu);
  for (int i = 1; i < P.n; i++) pthread_join(P.th[i], NULL);
  P.stop = 0;
  P.n = 1;
}

int nr_set_threads(int n) {
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  if (n == P.n) return n;
  pool_stop();
  P.n = n;
  P.start_gen = atomic_load(&P.gen);
  for (int i = 1; i < n; i++) pthread_create(&P.th[i], NULL, worker, (void *)(intptr_t)i);
  return n;
}

int nr_get_threads(void) { return P.n; }
int pool_size(void) { return P.serial ? 1 : P.n; }
void pool_serial(int on) { P.serial = on; }

void pool_run(task_fn fn, void *ctx, int ntasks) {
  if (ntasks <= 0) return;
  if (pool_size() == 1 || ntasks == 1) {
    for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
    return;
  }
  P.fn = fn;
  P.ctx = ctx;
  P.ntasks = ntasks;
  atomic_store(&P.next, 0);
  atomic_store(&P.active, P.n - 1);
  pthread_mutex_lock(&P.mu);
  atomic_fetch_add_explicit(&P.gen, 1, memory_order_release);
  pthread_cond_broadcast(&P.cv);
  pthread_mutex_unlock(&P.mu);
  run_tasks(0);
  /* spin briefly, then yield: on an oversubscribed machine a descheduled worker must get the core */
  for (int spins = 0; atomic_load_explicit(&P.active, memory_order_acquire) > 0; spins++) {
    if (spins < 4000) __builtin_ia32_pause();
    else sched_yield();
  }
}

typedef struct {
  range_fn fn;
  void *ctx;
  int n, chunk;
} ForCtx;

static void for_task(void *c, int t, int tid) {
  ForCtx *f = c;
  int b = t * f->chunk, e = b + f->chunk;
  if (e > f->n) e = f->n;
  if (b < e) f->fn(f->ctx, b, e, tid);
}

void pool_for(range_fn fn, void *ctx, int n, int min_chunk) {
  if (n <= 0) return;
  if (pool_size() == 1 || n < 2 * min_chunk) { /* too little work to be worth a wake-up */
    fn(ctx, 0, n, 0);
    return;
  }
  int nt = P.n * 4;
  int chunk = (n + nt - 1) / nt;
  if (chunk < min_chunk) chunk = min_chunk;
  ForCtx f = {fn, ctx, n, chunk};
  pool_run(for_task, &f, (n + chunk - 1) / chunk);
}
