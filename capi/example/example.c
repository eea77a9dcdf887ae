/* example.c: goreweight from plain C.
 *
 * Build (from the repository root):
 *   go build -buildmode=c-shared -o libgoreweight.so ./capi
 *   cc -o example capi/example/example.c -I. -L. -lgoreweight -Wl,-rpath,'$ORIGIN'
 *   ./example
 *
 * It weights one batch with a Weigher (raw pointers, the Arrow C Data
 * Interface, a masked token batch), runs a Reweighter through a warm-up,
 * saves and restores its state, evaluates a schedule, and shows that
 * errors come back as messages.
 * Every line it prints is "key value..." so that a test can check it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libgoreweight.h"

/* The Arrow C Data Interface structs, copied from the specification. */
#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE
struct ArrowSchema {
  const char *format;
  const char *name;
  const char *metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema **children;
  struct ArrowSchema *dictionary;
  void (*release)(struct ArrowSchema *);
  void *private_data;
};
struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void **buffers;
  struct ArrowArray **children;
  struct ArrowArray *dictionary;
  void (*release)(struct ArrowArray *);
  void *private_data;
};
#endif

static int arrow_released = 0;
static void release_schema(struct ArrowSchema *s) { s->release = NULL; }
static void release_array(struct ArrowArray *a) {
  free(a->buffers);
  a->release = NULL;
  arrow_released++;
}

/* check exits with a message when a call failed. */
static void check(int status, char *err, const char *what) {
  if (status != GRW_OK) {
    fprintf(stderr, "%s failed (status %d): %s\n", what, status, err ? err : "(no message)");
    grw_free(err);
    exit(1);
  }
}

static void print_weights(const char *key, const float *w, int n) {
  double sum = 0;
  printf("%s", key);
  for (int i = 0; i < n; i++) {
    printf(" %.6f", w[i]);
    sum += w[i];
  }
  printf("\n%s_sum %.6f\n", key, sum);
}

int main(void) {
  char *err = NULL, *out = NULL;
  float losses[5] = {1.0f, 2.0f, 3.0f, 4.0f, NAN};
  float w[5];
  int64_t nonfinite = -1;

  check(grw_version(&out, &err), err, "grw_version");
  printf("version %s\n", out);
  grw_free(out);

  /* A Weigher: fixed options, temperature per call. */
  uint64_t wh = 0;
  check(grw_weigher_new("{\"strategy\": \"linupper\", \"delta\": 1}", &wh, &err), err, "grw_weigher_new");
  check(grw_weigher_weights(wh, 1.0, losses, NULL, 5, w, &nonfinite, NULL, &err), err, "grw_weigher_weights");
  print_weights("linupper", w, 5);
  printf("nonfinite %lld\n", (long long)nonfinite);

  /* The same losses through the Arrow C Data Interface: Go reads the
     buffer in place and writes the weights into ours. */
  struct ArrowSchema schema = {"f", "losses", NULL, 2, 0, NULL, NULL, release_schema, NULL};
  const void **buffers = malloc(2 * sizeof(void *));
  buffers[0] = NULL; /* no validity bitmap */
  buffers[1] = losses;
  struct ArrowArray array = {5, 0, 0, 2, 0, buffers, NULL, NULL, release_array, NULL};
  float wa[5];
  char *stats = NULL;
  check(grw_weigher_weights_arrow(wh, 1.0, &schema, &array, NULL, 5, wa, NULL, &stats, &err), err,
        "grw_weigher_weights_arrow");
  printf("arrow_equal %d\n", memcmp(w, wa, sizeof w) == 0);
  printf("arrow_released %d\n", arrow_released);
  printf("stats_has_ess %d\n", strstr(stats, "\"ess\"") != NULL);
  grw_free(stats);
  /* The packed fast path: one struct instead of nine arguments. */
  grw_weights_args args = {0};
  args.handle = wh;
  args.r = 1.0;
  args.losses = losses;
  args.n = 5;
  args.weights_out = wa;
  check(grw_weights_packed(&args, &err), err, "grw_weights_packed");
  printf("packed_equal %d\n", memcmp(w, wa, sizeof w) == 0);
  printf("packed_nonfinite %lld\n", (long long)args.nonfinite);
  /* A masked (token-level) batch: the dense buffer, a mask byte per entry
     (here the NaN is masked: weight 0, not reported as non-finite). */
  uint8_t mask[5] = {1, 1, 1, 1, 0};
  grw_masked_args margs = {0};
  margs.handle = wh;
  margs.r = 1.0;
  margs.losses = losses;
  margs.mask = mask;
  margs.n = 5;
  margs.weights_out = wa;
  check(grw_weights_masked(&margs, &err), err, "grw_weights_masked");
  print_weights("masked", wa, 5);
  printf("masked_nonfinite %lld\n", (long long)margs.nonfinite);
  check(grw_close(wh, &err), err, "grw_close");

  /* Errors are messages, never crashes. */
  int st = grw_weigher_new("{\"strategy\": \"nope\"}", &wh, &err);
  printf("bad_strategy_status %d\n", st);
  printf("bad_strategy_error %s\n", err);
  grw_free(err);
  err = NULL;
  st = grw_weigher_weights(wh, 1.0, NULL, NULL, 5, w, NULL, NULL, &err);
  printf("closed_handle_status %d\n", st);
  printf("closed_handle_error %s\n", err);
  grw_free(err);
  err = NULL;

  /* A Reweighter: 2 uniform warm-up steps, then r = 1. */
  uint64_t rh = 0;
  check(grw_reweighter_new("{\"strategy\": \"linupper\", \"schedule\": {\"kind\": \"constant\", \"r\": 1, \"warmup\": 2}}",
                           &rh, &err),
        err, "grw_reweighter_new");
  float l4[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  for (int step = 0; step < 3; step++) {
    check(grw_reweighter_weights(rh, l4, NULL, 4, w, NULL, NULL, &err), err, "grw_reweighter_weights");
    char key[32];
    snprintf(key, sizeof key, "step%d", step);
    print_weights(key, w, 4);
  }
  char *state = NULL;
  check(grw_reweighter_state(rh, &state, &err), err, "grw_reweighter_state");
  uint64_t rh2 = 0;
  check(grw_reweighter_restore(state, &rh2, &err), err, "grw_reweighter_restore");
  grw_free(state);
  int64_t step = -1;
  check(grw_reweighter_step(rh2, &step, &err), err, "grw_reweighter_step");
  printf("restored_step %lld\n", (long long)step);
  /* Status codes name the class of error: an empty batch, non-finite losses. */
  st = grw_reweighter_weights(rh2, l4, NULL, 0, w, NULL, NULL, &err);
  printf("empty_status_is_eempty %d\n", st == GRW_EEMPTY);
  grw_free(err);
  err = NULL;
  float lnan[2] = {NAN, NAN};
  st = grw_reweighter_weights(rh2, lnan, NULL, 2, w, NULL, NULL, &err);
  printf("all_nan_status_is_enonfinite %d\n", st == GRW_ENONFINITE);
  grw_free(err);
  err = NULL;
  check(grw_reweighter_stats(rh, &out, &err), err, "grw_reweighter_stats");
  printf("stats_has_step %d\n", strstr(out, "\"step\": 2") != NULL);
  grw_free(out);
  check(grw_close(rh, &err), err, "grw_close");
  check(grw_close(rh2, &err), err, "grw_close");

  double r = 0;
  check(grw_schedule_at("{\"kind\": \"linear\", \"r_start\": 100, \"r_end\": 1, \"steps\": 10, \"warmup\": 5}", 10, &r,
                        &err),
        err, "grw_schedule_at");
  printf("schedule_r %.4f\n", r);
  check(grw_schedule_at("{\"kind\": \"linear\", \"r_start\": 100, \"r_end\": 1, \"steps\": 10, \"warmup\": 5}", 0, &r,
                        &err),
        err, "grw_schedule_at");
  printf("warmup_r_is_inf %d\n", isinf(r) && r > 0);
  printf("ok\n");
  return 0;
}
