/* Rotary embedding, nanochat convention: split halves (x1 = first hd/2, x2 = last hd/2),
 * y1 = x1 cos + x2 sin, y2 = -x1 sin + x2 cos. Backward is the inverse rotation. The caller passes
 * the cos/sin rows of the token's position. */
#include "common.h"

void rope_forward_row(float *x, int nh, int hd, const float *cos, const float *sin) {
  int h2 = hd / 2;
  for (int h = 0; h < nh; h++, x += hd)
    for (int j = 0; j < h2; j++) {
      float a = x[j], b = x[j + h2];
      x[j] = a * cos[j] + b * sin[j];
      x[j + h2] = -a * sin[j] + b * cos[j];
    }
}

void rope_backward_row(float *dx, int nh, int hd, const float *cos, const float *sin) {
  int h2 = hd / 2;
  for (int h = 0; h < nh; h++, dx += hd)
    for (int j = 0; j < h2; j++) {
      float a = dx[j], b = dx[j + h2];
      dx[j] = a * cos[j] - b * sin[j];
      dx[j + h2] = a * sin[j] + b * cos[j];
    }
}
