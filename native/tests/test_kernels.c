/* Unit checks of the C kernels that the FFI tests do not reach directly: sgemm in all transpose
 * modes and edge sizes against a naive triple loop, and the vector exp. Build and run: make test */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../cpu/common.h"

static float frand(void) { return (float)rand() / RAND_MAX * 2 - 1; }

int main(void) {
  int fails = 0;
  int sizes[][3] = {{1, 1, 1}, {7, 13, 5}, {6, 16, 256}, {37, 50, 300}, {128, 128, 128}, {100, 1030, 70}, {513, 33, 17}};
  for (int th = 1; th <= 2; th++) {
    nr_set_threads(th);
    for (unsigned si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
      for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
          for (int acc = 0; acc < 2; acc++) {
            int M = sizes[si][0], N = sizes[si][1], K = sizes[si][2];
            int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
            float *A = malloc(sizeof(float) * (ta ? K : M) * lda), *B = malloc(sizeof(float) * (tb ? N : K) * ldb);
            float *C = malloc(sizeof(float) * M * ldc), *R = malloc(sizeof(float) * M * ldc);
            for (int i = 0; i < (ta ? K : M) * lda; i++) A[i] = frand();
            for (int i = 0; i < (tb ? N : K) * ldb; i++) B[i] = frand();
            for (int i = 0; i < M * ldc; i++) C[i] = R[i] = frand();
            for (int i = 0; i < M; i++)
              for (int j = 0; j < N; j++) {
                double s = acc ? R[i * ldc + j] : 0;
                for (int k = 0; k < K; k++)
                  s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
                R[i * ldc + j] = (float)s;
              }
            sgemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, acc);
            double worst = 0;
            for (int i = 0; i < M; i++)
              for (int j = 0; j < N; j++) {
                double e = fabs(C[i * ldc + j] - R[i * ldc + j]) / (1 + fabs(R[i * ldc + j]));
                if (e > worst) worst = e;
              }
            if (worst > 1e-4 * sqrt(K)) {
              printf("FAIL sgemm th=%d M=%d N=%d K=%d ta=%d tb=%d acc=%d err=%g\n", th, M, N, K, ta, tb, acc, worst);
              fails++;
            }
            free(A); free(B); free(C); free(R);
          }
  }
  /* a one-row product (gemv.c) must equal, bit for bit, that row of a GEMM: decode == full forward */
  int gv[][2] = {{1, 1}, {37, 300}, {100, 70}, {24, 600}, {4096, 256}, {33, 1030}};
  for (int th = 1; th <= 2; th++) {
    nr_set_threads(th);
    for (unsigned si = 0; si < sizeof gv / sizeof gv[0]; si++)
      for (int tb = 0; tb < 2; tb++)
        for (int acc = 0; acc < 2; acc++) {
          int M = 3, N = gv[si][0], K = gv[si][1], lda = K + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
          float *A = malloc(sizeof(float) * M * lda), *B = malloc(sizeof(float) * (tb ? N : K) * ldb);
          float *C = malloc(sizeof(float) * M * ldc), *row = malloc(sizeof(float) * N);
          for (int i = 0; i < M * lda; i++) A[i] = frand();
          for (int i = 0; i < (tb ? N : K) * ldb; i++) B[i] = frand();
          for (int i = 0; i < M * ldc; i++) C[i] = frand();
          memcpy(row, C + ldc, sizeof(float) * N);
          sgemm(0, tb, M, N, K, A, lda, B, ldb, C, ldc, acc);
          sgemm(0, tb, 1, N, K, A + lda, lda, B, ldb, row, N, acc);
          if (memcmp(row, C + ldc, sizeof(float) * N)) {
            printf("FAIL one-row product != GEMM row th=%d N=%d K=%d tb=%d acc=%d\n", th, N, K, tb, acc);
            fails++;
          }
          free(A); free(B); free(C); free(row);
        }
  }
  double worst = 0;
  for (float x = -87.0f; x < 88.0f; x += 0.0137f) {
    v8 v = v8_exp(v8_set1(x));
    double e = fabs(v[0] - exp(x)) / exp(x);
    if (e > worst) worst = e;
  }
  printf("v8_exp max rel err %.3g\n", worst);
  if (worst > 1e-6) fails++;
  double wl = 0, ws = 0;
  for (float x = 1e-30f; x < 1e30f; x *= 1.37f) {
    v8 v = v8_log(v8_set1(x));
    double e = fabs(v[0] - log(x)) / fmax(1e-3, fabs(log(x)));
    if (e > wl) wl = e;
  }
  for (float r = -30.0f; r < 30.0f; r += 0.0173f) {
    double ref = r > 20 ? r : log1p(exp((double)r));
    v8 v = v8_softplus(v8_set1(r));
    double e = fabs(v[0] - ref) / ref;
    if (e > ws) ws = e;
  }
  printf("v8_log max rel err %.3g, v8_softplus max rel err %.3g\n", wl, ws);
  if (wl > 1e-6 || ws > 1e-6) fails++;
  printf(fails ? "FAILED %d\n" : "kernel tests ok\n", fails);
  return fails != 0;
}
