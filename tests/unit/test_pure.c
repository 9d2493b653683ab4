/* test_pure.c: table tests for the small pure functions every decision rests on: fixed-point
 * feature values, the ppm split of weights, the cooldown and its clamp, local time, the wire
 * vocabulary's tables and the text rules. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "engine_internal.h"
#include "loopwise/text.h"
#include "loopwise/wire.h"
#include "testutil.h"

static void fixed_point_rounds_half_up_and_saturates(void) {
  static const struct {
    double v;
    int32_t q;
  } cases[] = {
      {0.0, 0},         {1.0, 256},       {-1.0, -256},       {0.5, 128},          {1.0 / 256, 1},
      {0.5 / 256, 1},   /* half a step rounds up */            {-0.5 / 256, 0},     {0.49 / 256, 0},
      {-1.5, -384},     {3.999, 1024},    {1e12, INT32_MAX},  {-1e12, INT32_MIN},  {8388607.99, 2147483645}, {8388608.0, INT32_MAX},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (lw_fx(cases[i].v) != cases[i].q) fprintf(stderr, "case %zu: lw_fx(%.17g)\n", i, cases[i].v);
    CHECK_INT(lw_fx(cases[i].v), cases[i].q);
  }
  CHECK_INT(lw_fx(NAN), 0);
  CHECK_INT(lw_fx(INFINITY), INT32_MAX);
  CHECK_INT(lw_fx(-INFINITY), INT32_MIN);
}

static void ppm_split_is_exact_and_gives_leftovers_by_largest_remainder(void) {
  static const struct {
    int n;
    uint32_t w[4], ppm[4];
  } cases[] = {
      {1, {5}, {1000000}},
      {2, {1, 1}, {500000, 500000}},
      {3, {1, 1, 1}, {333334, 333333, 333333}}, /* ties: the first gets the leftover */
      {3, {2, 1, 0}, {666667, 333333, 0}},      /* a zero weight never gets a leftover */
      {4, {3, 3, 3, 1}, {300000, 300000, 300000, 100000}},
      {2, {4294967295u, 1}, {1000000, 0}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint32_t ppm[4] = {0}, sum = 0;
    lw_ppm_split(cases[i].w, cases[i].n, ppm);
    for (int k = 0; k < cases[i].n; k++) {
      sum += ppm[k];
      if (ppm[k] != cases[i].ppm[k]) fprintf(stderr, "case %zu, weight %d\n", i, k);
      CHECK_INT(ppm[k], cases[i].ppm[k]);
    }
    CHECK_INT(sum, LW_PPM);
  }
}

static void cooldown_grows_per_dismissal_and_stops_at_max_days(void) {
  lw_config cfg = tu_default_config();
  cfg.cooldown_days = 7;
  cfg.cooldown_growth = 2;
  cfg.cooldown_max_days = 90;
  static const struct {
    uint32_t dismissals;
    int64_t days;
  } cases[] = {{1, 7}, {2, 14}, {3, 28}, {4, 56}, {5, 90}, {6, 90}, {1000, 90}, {UINT32_MAX, 90}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    CHECK_INT(lw_cooldown_ms(&cfg, cases[i].dismissals), cases[i].days * DAY);
  cfg.cooldown_growth = 1;
  CHECK_INT(lw_cooldown_ms(&cfg, 50), 7 * DAY);
  cfg.cooldown_days = cfg.cooldown_max_days = 3;
  CHECK_INT(lw_cooldown_ms(&cfg, 9), 3 * DAY);
}

static void local_time_floors_before_1970_and_wraps_the_week(void) {
  static const struct {
    int64_t t;
    int tz, hour, wday;
  } cases[] = {
      {0, 0, 0, 4},                           /* 1970-01-01 00:00 UTC, a Thursday */
      {T0, 0, 12, 1},                         /* 2026-01-05 12:00 UTC, a Monday */
      {T0, 120, 14, 1},                       /* UTC+2 */
      {T0, -780, 23, 0},                      /* UTC-13: Sunday 23:00 */
      {T0 + 12 * HOUR - 1, 0, 23, 1},         /* a millisecond before midnight */
      {T0 + 12 * HOUR, 0, 0, 2},              /* midnight: Tuesday */
      {-1, 0, 23, 3},                         /* 1969-12-31 23:59:59.999, a Wednesday */
      {-DAY, 0, 0, 3},
      {-DAY - 1, 0, 23, 2},
      {0, -60, 23, 3},
      {0, 840, 14, 4},                        /* UTC+14 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lw_local_time lt = lw_local_time_of(cases[i].t, cases[i].tz);
    if (lt.hour != cases[i].hour || lt.wday != cases[i].wday) fprintf(stderr, "case %zu\n", i);
    CHECK_INT(lt.hour, cases[i].hour);
    CHECK_INT(lt.wday, cases[i].wday);
  }
}

static void vocabulary_names_round_trip_and_rules_fit_the_fields(void) {
  for (int k = 0; k < LW_KIND_COUNT; k++) {
    CHECK_INT(lw_kind_parse(lw_kind_name((lw_kind)k)), k);
    CHECK(strcmp(lw_kind_stat_name((lw_kind)k), "unknown") != 0);
    /* every kind has kind, t and install; a decision has its decision id */
    CHECK_INT(lw_kind_rule((lw_kind)k, LW_FIELD_KIND), 'R');
    CHECK_INT(lw_kind_rule((lw_kind)k, LW_FIELD_INSTALL), 'R');
    CHECK_INT(lw_kind_rule((lw_kind)k, LW_FIELD_DECISION), lw_kind_flags((lw_kind)k) & LW_KIND_F_REFEREE ? 'O' : 'R');
    /* what carries a referral code is what shares, and the referee side */
    CHECK_INT(lw_kind_rule((lw_kind)k, LW_FIELD_CODE) != '-',
              (lw_kind_flags((lw_kind)k) & (LW_KIND_F_SHARED | LW_KIND_F_REFEREE)) != 0);
  }
  for (int m = 0; m < LW_MODE_COUNT; m++) CHECK_INT(lw_mode_parse(lw_mode_name((lw_mode)m)), m);
  for (int f = 0; f < LW_FIELD_COUNT; f++) CHECK(strcmp(lw_field_name((lw_field)f), "unknown") != 0);
  CHECK_INT(lw_kind_parse("close"), -1); /* local only, never on the wire */
  CHECK_INT(lw_kind_parse(NULL), -1);
  CHECK_STR(lw_kind_name(LW_KIND_COUNT), "unknown");
  CHECK_INT(lw_kind_rule(LW_KIND_COUNT, LW_FIELD_KIND), '-');
  CHECK(!lw_action_is_prompt(LW_ACTION_NONE));
  CHECK(!lw_action_is_prompt(LW_ACTION_NOT_NOW));
  CHECK(!lw_action_is_prompt(""));
  CHECK(lw_action_is_prompt("credit_10"));
}

static void text_rules_are_one_for_config_and_wire(void) {
  static const struct {
    lw_charset cs;
    const char *s;
    size_t min, max;
    int ok;
  } cases[] = {
      {LW_CS_NAME, "credit_10", 1, 32, 1},   {LW_CS_NAME, "has space", 1, 32, 0},
      {LW_CS_NAME, "", 1, 32, 0},            {LW_CS_NAME, "a.b", 1, 32, 0},
      {LW_CS_MODEL, "m1.2-x", 1, 32, 1},     {LW_CS_HEX, "0123456789abcdef", 16, 16, 1},
      {LW_CS_HEX, "0123456789ABCDEF", 16, 16, 0}, {LW_CS_HEX, "0123456789abcde", 16, 16, 0},
      {LW_CS_CODE, "ABC234", 6, 16, 1},      {LW_CS_CODE, "abc234", 6, 16, 0},
      {LW_CS_CODE, "ABC23", 6, 16, 0},       {LW_CS_TEXT, "caf\xc3\xa9 \xe2\x82\xac", 0, 6, 1},
      {LW_CS_TEXT, "caf\xc3\xa9 \xe2\x82\xac!", 0, 6, 0}, /* 7 code points */
      {LW_CS_TEXT, "\xf4\x90\x80\x80", 0, 160, 0},          /* past U+10FFFF */
      {LW_CS_TEXT, "\xed\xa0\x80", 0, 160, 0},              /* a surrogate */
      {LW_CS_TEXT, "\xc0\xaf", 0, 160, 0},                  /* overlong */
      {LW_CS_TEXT, "tab\there", 0, 160, 0},                 /* control character */
      {LW_CS_TEXT, "\xf4\x8f\xbf\xbf", 0, 160, 1},          /* U+10FFFF itself */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int got = lw_text_is(cases[i].cs, cases[i].s, cases[i].min, cases[i].max);
    if (got != cases[i].ok) fprintf(stderr, "case %zu: \"%s\"\n", i, cases[i].s);
    CHECK_INT(got, cases[i].ok);
  }
  char long_name[LW_NAME_LEN + 2];
  memset(long_name, 'a', sizeof long_name - 1);
  long_name[LW_NAME_LEN + 1] = '\0';
  CHECK(!lw_is_name(long_name));
  long_name[LW_NAME_LEN] = '\0';
  CHECK(lw_is_name(long_name));
}

/* The engine's generator keeps all 128 bits of its seed: two seeds that agree in the 64 bits
 * lw_rng_seed folds them into (lo ^ rotl(hi, 32) ^ hi * K) still give different streams. */
static void rng_seed_keeps_all_128_bits(void) {
  uint64_t lo = 0x0123456789abcdefull, hi2 = 1;
  uint64_t lo2 = lo ^ ((hi2 << 32) | (hi2 >> 32)) ^ (hi2 * 0x2545f4914f6cdd1dull);
  lw_rng a, b;
  lw_rng_seed128(&a, lo, 0);
  lw_rng_seed128(&b, lo2, hi2);
  int same = 1;
  for (int i = 0; i < 4; i++) same &= lw_rng_next(&a) == lw_rng_next(&b);
  CHECK_INT(same, 0);
  /* and the state is the seed's, both halves: a change in either changes the first draw */
  lw_rng_seed128(&a, 5, 6);
  lw_rng_seed128(&b, 5, 7);
  CHECK(lw_rng_next(&a) != lw_rng_next(&b));
}

int main(void) {
  RUN(fixed_point_rounds_half_up_and_saturates);
  RUN(ppm_split_is_exact_and_gives_leftovers_by_largest_remainder);
  RUN(cooldown_grows_per_dismissal_and_stops_at_max_days);
  RUN(local_time_floors_before_1970_and_wraps_the_week);
  RUN(vocabulary_names_round_trip_and_rules_fit_the_fields);
  RUN(text_rules_are_one_for_config_and_wire);
  RUN(rng_seed_keeps_all_128_bits);
  return check_failures ? 1 : 0;
}
