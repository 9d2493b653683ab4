/* Runs the shared cases natively (format in tests/cases/README.md): the function groups of
 * tests/cases/functions.json and the decision cases in tests/cases/decisions/.
 *   test_cases                  check every case
 *   test_cases --trace FILE     print FILE's trace, one line per decision, then the batch
 * The WASM test runs the same cases and compares its trace with this one. */
#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "loopwise/wire.h"
#include "sbuf.h"
#include "testutil.h"

/* ---- function groups (tests/cases/functions.json) ---------------------------------- */

/* The spec major version this runner reads: a file of another major is not run. */
#define FUNCTIONS_SPEC_MAJOR 1

static int group_fails(const char *group, const cJSON *c, const char *got) {
  char *want = cJSON_PrintUnformatted(c);
  fprintf(stderr, "functions.json: %s: %s: got %s\n", group, want, got);
  free(want);
  return 1;
}

/* The display part of a compiled config, as models/FORMAT.md lays it out: E (u32 at byte 8)
 * bytes of engine part after the 12-byte header, then JSON up to the 4-byte checksum. */
static cJSON *display_part(const uint8_t *lwc, size_t len) {
  size_t e = (size_t)lwc[8] | (size_t)lwc[9] << 8 | (size_t)lwc[10] << 16 | (size_t)lwc[11] << 24;
  if (len < 16 || e > len - 16) return NULL;
  return cJSON_ParseWithLength((const char *)lwc + 12 + e, len - 16 - e);
}

/* One group's cases, each [description, input, expected]. Returns the failure count. */
static int run_group(const char *group, const cJSON *cases) {
  int failures = 0;
  char got[256];
  const cJSON *c;
  cJSON_ArrayForEach(c, cases) {
    const cJSON *in = cJSON_GetArrayItem(c, 1), *want = cJSON_GetArrayItem(c, 2);
    got[0] = '\0';
    if (strcmp(group, "fnv1a") == 0) {
      uint32_t h = lw_fnv1a(in->valuestring);
      if ((double)h != want->valuedouble) snprintf(got, sizeof got, "%u", (unsigned)h);
    } else if (strcmp(group, "vw_hash") == 0) {
      uint32_t h = 0;
      int ok = lw_feature_hash(in->valuestring, strlen(in->valuestring), &h);
      if (ok != !cJSON_IsNull(want) || (ok && (double)h != want->valuedouble))
        snprintf(got, sizeof got, ok ? "%u" : "a refusal", (unsigned)h);
    } else if (strcmp(group, "fx") == 0) {
      int32_t q = lw_fx(in->valuedouble);
      if ((double)q != want->valuedouble) snprintf(got, sizeof got, "%d", (int)q);
    } else if (strcmp(group, "fx_decimal") == 0) {
      char text[32];
      lw_sbuf sb;
      lw_sb_init(&sb, text, sizeof text);
      lw_sb_fx(&sb, (int32_t)in->valuedouble);
      if (strcmp(text, want->valuestring) != 0) snprintf(got, sizeof got, "\"%s\"", text);
    } else if (strcmp(group, "ppm_split") == 0) {
      uint32_t w[16], ppm[16];
      int n = cJSON_GetArraySize(in);
      for (int i = 0; i < n; i++) w[i] = (uint32_t)cJSON_GetArrayItem(in, i)->valuedouble;
      lw_ppm_split(w, n, ppm);
      for (int i = 0; i < n; i++)
        if ((double)ppm[i] != cJSON_GetArrayItem(want, i)->valuedouble) snprintf(got, sizeof got, "[%d] = %u", i, (unsigned)ppm[i]);
    } else if (strcmp(group, "kind_names") == 0) {
      if (cJSON_GetArraySize(want) != LW_KIND_COUNT) snprintf(got, sizeof got, "%d kinds", (int)LW_KIND_COUNT);
      for (int k = 0; k < LW_KIND_COUNT && !got[0]; k++)
        if (strcmp(lw_kind_name((lw_kind)k), cJSON_GetArrayItem(want, k)->valuestring) != 0)
          snprintf(got, sizeof got, "kind %d is \"%s\"", k, lw_kind_name((lw_kind)k));
    } else if (strcmp(group, "display_part") == 0) {
      /* Natively the config is compiled as loopwise-config does, then split per FORMAT.md. */
      char *json = cJSON_PrintUnformatted(in);
      lw_config cfg = tu_config(json);
      free(json);
      static uint8_t lwc[65536];
      size_t len = lw_config_write(&cfg, lwc, sizeof lwc);
      cJSON *d = len && len <= sizeof lwc ? display_part(lwc, len) : NULL;
      if (!d || !cJSON_Compare(d, want, 1)) {
        char *t = d ? cJSON_PrintUnformatted(d) : NULL;
        snprintf(got, sizeof got, "%.200s", t ? t : "no display part");
        free(t);
      }
      cJSON_Delete(d);
    } else {
      snprintf(got, sizeof got, "a group this runner does not know");
    }
    if (got[0]) failures += group_fails(group, c, got);
  }
  return failures;
}

static int run_functions(void) {
  char *text = tu_read_file(tu_path("tests/cases/functions.json"), NULL);
  cJSON *doc = text ? cJSON_Parse(text) : NULL;
  free(text);
  const cJSON *spec = cJSON_GetObjectItem(doc, "specVersion");
  if (!cJSON_IsString(spec) || atoi(spec->valuestring) != FUNCTIONS_SPEC_MAJOR) {
    fprintf(stderr, "functions.json: missing, unreadable or not spec version %d.x\n", FUNCTIONS_SPEC_MAJOR);
    cJSON_Delete(doc);
    return 1;
  }
  int failures = 0, groups = 0;
  const cJSON *g;
  cJSON_ArrayForEach(g, cJSON_GetObjectItem(doc, "groups")) {
    int f = run_group(g->string, g);
    printf("%s functions.json %s (%d cases)\n", f ? "FAIL" : "ok  ", g->string, cJSON_GetArraySize(g));
    failures += f;
    groups++;
  }
  cJSON_Delete(doc);
  if (groups < 7) {
    fprintf(stderr, "functions.json: expected at least 7 groups, found %d\n", groups);
    failures++;
  }
  return failures;
}

/* ---- decision cases (tests/cases/decisions/) ------------------------------------- */

static int64_t step_time(double start, const cJSON *step) {
  const cJSON *h = cJSON_GetObjectItem(step, "at_h");
  return (int64_t)start + (int64_t)floor(h->valuedouble * 3600000.0 + 0.5);
}

static int matches(const char *file, const char *djson, const cJSON *expect) {
  cJSON *d = cJSON_Parse(djson);
  int ok = 1;
  for (const cJSON *want = expect->child; want; want = want->next) {
    if (strcmp(want->string, "p_by_action") == 0) {
      const cJSON *action = cJSON_GetObjectItem(d, "action");
      const cJSON *p = cJSON_GetObjectItem(want, action->valuestring);
      if (!p || p->valuedouble != cJSON_GetObjectItem(d, "p")->valuedouble) ok = 0;
      continue;
    }
    const cJSON *got = cJSON_GetObjectItem(d, want->string);
    if (!got || !cJSON_Compare(got, want, 1)) ok = 0;
  }
  if (!ok) {
    char *w = cJSON_PrintUnformatted(expect);
    fprintf(stderr, "%s: decision %s\n    does not match %s\n", file, djson, w);
    free(w);
  }
  cJSON_Delete(d);
  return ok;
}

/* Run one case. With trace != NULL, print the trace there. Returns the failure count. */
static int run_case(const char *file, FILE *trace) {
  char *text = tu_read_file(file, NULL);
  cJSON *c = text ? cJSON_Parse(text) : NULL;
  free(text);
  if (!c) {
    fprintf(stderr, "%s: cannot read or parse\n", file);
    return 1;
  }
  const cJSON *cfgj = cJSON_GetObjectItem(c, "config");
  char *cfg_text = cJSON_IsString(cfgj) ? tu_read_file(tu_path(cfgj->valuestring), NULL)
                                        : cJSON_PrintUnformatted(cfgj);
  lw_config cfg = tu_config(cfg_text);
  free(cfg_text);
  const cJSON *seed = cJSON_GetObjectItem(c, "seed");
  uint32_t s[4];
  for (int i = 0; i < 4; i++) s[i] = (uint32_t)cJSON_GetArrayItem(seed, i)->valuedouble;
  lw_engine *e;
  char err[LW_ERRMSG_MAX];
  int failures = 0;
  lw_engine_create(&cfg, (uint64_t)s[1] << 32 | s[0], (uint64_t)s[3] << 32 | s[2], 0, &e, err, sizeof err);
  double start = cJSON_GetObjectItem(c, "start")->valuedouble;
  const cJSON *model = cJSON_GetObjectItem(c, "model");
  if (cJSON_IsString(model)) {
    size_t mlen;
    char *bytes = tu_read_file(tu_path(model->valuestring), &mlen);
    if (!bytes || lw_engine_set_model(e, (const uint8_t *)bytes, mlen, err, sizeof err) != LW_OK) {
      fprintf(stderr, "%s: model %s: %s\n", file, model->valuestring, bytes ? err : "unreadable");
      failures++;
    }
    free(bytes);
  }
  const cJSON *model_status = cJSON_GetObjectItem(c, "model_status");
  if (cJSON_IsString(model_status) && strcmp(lw_engine_model_status(e), model_status->valuestring) != 0) {
    fprintf(stderr, "%s: model status %s, expected %s\n", file, lw_engine_model_status(e), model_status->valuestring);
    failures++;
  }

  char last_id[LW_DECISION_ID_LEN + 1] = "";
  char djson[1024];
  const cJSON *step;
  cJSON_ArrayForEach(step, cJSON_GetObjectItem(c, "steps")) {
    int64_t t = step_time(start, step);
    const cJSON *track = cJSON_GetObjectItem(step, "track");
    const cJSON *outcome = cJSON_GetObjectItem(step, "outcome");
    const cJSON *consent = cJSON_GetObjectItem(step, "consent");
    const cJSON *attr = cJSON_GetObjectItem(step, "attribute");
    const cJSON *flags = cJSON_GetObjectItem(step, "flags");
    const cJSON *landing = cJSON_GetObjectItem(step, "landing");
    const cJSON *share = cJSON_GetObjectItem(step, "share");
    if (cJSON_IsString(share)) {
      uint8_t random[LW_TOKEN_BYTES] = {0};
      const cJSON *r = cJSON_GetObjectItem(step, "random"), *want = cJSON_GetObjectItem(step, "token");
      for (int i = 0; i < LW_TOKEN_BYTES && i < cJSON_GetArraySize(r); i++)
        random[i] = (uint8_t)cJSON_GetArrayItem(r, i)->valueint;
      char token[LW_TOKEN_LEN + 1] = "";
      lw_status st = lw_engine_share(e, last_id, share->valuestring, random, t, token, err, sizeof err);
      if (st != LW_OK || (cJSON_IsString(want) && strcmp(token, want->valuestring) != 0)) {
        fprintf(stderr, "%s: share %s: %s (token %s)\n", file, share->valuestring, st ? err : "ok", token);
        failures++;
      }
    } else if (cJSON_IsTrue(cJSON_GetObjectItem(step, "approve"))) {
      lw_decision d;
      lw_status st = lw_engine_approve(e, last_id, t, 0, &d, err, sizeof err);
      const cJSON *expect = cJSON_GetObjectItem(step, "expect");
      if (st == LW_OK) {
        lw_decision_to_json(&d, djson, sizeof djson);
        if (trace) fprintf(trace, "%s\n", djson);
      }
      if ((st == LW_OK) != cJSON_IsObject(expect) || (st == LW_OK && !matches(file, djson, expect))) {
        fprintf(stderr, "%s: approve: %s\n", file, st == LW_OK ? djson : err);
        failures++;
      }
    } else if (attr) {
      const cJSON *v = cJSON_GetArrayItem(attr, 1);
      if (lw_engine_set_attribute(e, cJSON_GetArrayItem(attr, 0)->valuestring,
                                  cJSON_IsString(v) ? v->valuestring : NULL, err, sizeof err) != LW_OK) {
        fprintf(stderr, "%s: attribute: %s\n", file, err);
        failures++;
      }
    } else if (flags) {
      lw_engine_set_privacy(e, cJSON_IsTrue(cJSON_GetObjectItem(flags, "gpc")),
                            cJSON_IsTrue(cJSON_GetObjectItem(flags, "dnt")));
      lw_engine_set_busy(e, cJSON_IsTrue(cJSON_GetObjectItem(flags, "busy")));
    } else if (landing) {
      const cJSON *tok = cJSON_GetObjectItem(step, "token");
      if (lw_engine_referee_landing_token(e, landing->valuestring, cJSON_IsString(tok) ? tok->valuestring : NULL, t,
                                          err, sizeof err) != LW_OK)
        failures++;
    } else if (cJSON_IsTrue(cJSON_GetObjectItem(step, "conversion"))) {
      if (lw_engine_referee_conversion(e, t, err, sizeof err) != LW_OK) failures++;
    } else if (track) {
      const cJSON *tz = cJSON_GetObjectItem(step, "tz"), *rep = cJSON_GetObjectItem(step, "repeat");
      const cJSON *expect = cJSON_GetObjectItem(step, "expect");
      int close = cJSON_IsTrue(cJSON_GetObjectItem(step, "close"));
      int n = rep ? rep->valueint : 1;
      lw_decision d;
      for (int i = 0; i < n; i++) {
        const cJSON *value = cJSON_GetObjectItem(step, "value"), *label = cJSON_GetObjectItem(step, "label");
        if (lw_engine_track_value(e, track->valuestring, value ? value->valuedouble : NAN,
                                  label ? label->valuestring : NULL, t, tz ? tz->valueint : 0, &d, err,
                                  sizeof err) != LW_OK) {
          fprintf(stderr, "%s: track %s: %s\n", file, track->valuestring, err);
          failures++;
          break;
        }
        lw_decision_to_json(&d, djson, sizeof djson);
        if (d.decided) {
          if (trace) fprintf(trace, "%s\n", djson);
          snprintf(last_id, sizeof last_id, "%s", d.id);
          if (cJSON_IsObject(expect) && !matches(file, djson, expect)) failures++;
          if (close && d.prompt) lw_engine_close(e, d.id, err, sizeof err);
        }
      }
      if (d.decided != cJSON_IsObject(expect)) {
        fprintf(stderr, "%s: step at %gh: expected %s, got %s\n", file,
                cJSON_GetObjectItem(step, "at_h")->valuedouble,
                cJSON_IsObject(expect) ? "a decision" : "no decision", djson);
        failures++;
      }
    } else if (outcome) {
      if (lw_engine_outcome_named(e, last_id, outcome->valuestring, t, err,
                            sizeof err) != LW_OK) {
        fprintf(stderr, "%s: outcome %s: %s\n", file, outcome->valuestring, err);
        failures++;
      }
    } else if (consent) {
      lw_engine_set_consent(e, cJSON_IsTrue(consent), t);
    }
  }
  int want = cJSON_GetObjectItem(c, "outbox")->valueint;
  if ((int)lw_outbox_count(lw_engine_outbox(e)) != want) {
    fprintf(stderr, "%s: outbox holds %zu records, expected %d\n", file,
            lw_outbox_count(lw_engine_outbox(e)), want);
    failures++;
  }
  static char batch[65536];
  size_t len, n;
  tu_take_batch(e, "case-key", (int64_t)start, 60000, batch, sizeof batch, &len, &n);
  if (trace) fprintf(trace, "%s\n", batch);
  lw_engine_free(e);
  cJSON_Delete(c);
  return failures;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--trace") == 0) return run_case(argv[2], stdout) ? 1 : 0;
  const char *dir = tu_path("tests/cases/decisions");
  char dirpath[1024];
  snprintf(dirpath, sizeof dirpath, "%s", dir);
  DIR *d = opendir(dirpath);
  if (!d) {
    fprintf(stderr, "cannot open %s\n", dirpath);
    return 1;
  }
  check_failures += run_functions();
  int cases = 0;
  struct dirent *ent;
  while ((ent = readdir(d))) {
    size_t n = strlen(ent->d_name);
    if (n < 6 || strcmp(ent->d_name + n - 5, ".json") != 0) continue;
    char file[1300];
    snprintf(file, sizeof file, "%s/%s", dirpath, ent->d_name);
    int f = run_case(file, NULL);
    check_failures += f;
    printf("%s %s\n", f ? "FAIL" : "ok  ", ent->d_name);
    cases++;
  }
  closedir(d);
  if (cases < 4) {
    fprintf(stderr, "expected at least 4 cases, found %d\n", cases);
    return 1;
  }
  return check_failures ? 1 : 0;
}
