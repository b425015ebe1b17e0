/* GEMM GFLOP/s on the small model's shapes (make bench-gemm). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "nanorag.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
  int th = argc > 1 ? atoi(argv[1]) : 1;
  nr_set_threads(th);
  int shapes[][5] = {{0,1,2048,128,128},{0,1,2048,512,128},{0,1,2048,128,512},{0,0,2048,128,512},{1,0,512,128,2048},{1,0,128,128,2048},{0,1,2048,1600,128},{0,1,64,256,32},{0,0,64,32,256},{0,1,512,512,512}};
  for (unsigned i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    int ta = shapes[i][0], tb = shapes[i][1], M = shapes[i][2], N = shapes[i][3], K = shapes[i][4];
    float *A = calloc((size_t)M * K, 4), *B = calloc((size_t)N * K, 4), *C = calloc((size_t)M * N, 4);
    for (size_t j = 0; j < (size_t)M * K; j++) A[j] = (j % 7) * 0.1f;
    for (size_t j = 0; j < (size_t)N * K; j++) B[j] = (j % 5) * 0.1f;
    int lda = ta ? M : K, ldb = tb ? K : N;
    nr_sgemm(ta, tb, M, N, K, A, lda, B, ldb, C, N, 0);
    int reps = (int)(2e9 / (2.0 * M * N * K)) + 1;
    double t0 = now();
    for (int r = 0; r < reps; r++) nr_sgemm(ta, tb, M, N, K, A, lda, B, ldb, C, N, 0);
    double dt = (now() - t0) / reps;
    printf("ta=%d tb=%d M=%5d N=%5d K=%5d  %7.1f GFLOP/s\n", ta, tb, M, N, K, 2.0 * M * N * K / dt / 1e9);
    free(A); free(B); free(C);
  }
  return 0;
}
