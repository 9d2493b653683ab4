/* lw-bandit-vw N [SEED [NOISE_FEATURES [one-best]]]: write N synthetic logged decisions as VW
 * cb text on stdout (actions a0,a1,not_now; the benchmark's input). one-best: a0 best in every
 * context, the rules mostly showing the worst (bandit.h bandit_one_best). */
#include <string.h>
#include <stdlib.h>

#include "bandit.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: lw-bandit-vw N [SEED [NOISE_FEATURES [one-best]]]\n");
    return 2;
  }
  bandit b;
  bandit_default(&b);
  if (argc > 3) b.n_noise = atoi(argv[3]);
  if (b.n_noise < 0 || b.n_noise > 200) return 2;
  if (argc > 4 && strcmp(argv[4], "one-best") == 0) bandit_one_best(&b);
  else if (argc > 4) return 2;
  return bandit_write_vw(&b, argc > 2 ? strtoull(argv[2], NULL, 10) : 1, atol(argv[1]), stdout) == 0 ? 0 : 1;
}
