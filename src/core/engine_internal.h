/* engine_internal.h: the engine's state, shared by engine.c and snapshot.c only. */
#ifndef LW_ENGINE_INTERNAL_H
#define LW_ENGINE_INTERNAL_H

#include "loopwise/engine.h"
#include "loopwise/model.h"
#include "loopwise/rng.h"

#define LW_SHOWN_RING 16 /* prompt times remembered for rolling-window caps */

enum { LW_CONSENT_UNSET = 0, LW_CONSENT_GIVEN = 1, LW_CONSENT_REFUSED = 2, LW_CONSENT_UNKNOWN = 3 };

typedef struct {
  uint32_t count;
  int64_t first_ms; /* 0 = never seen (or unknown after a migration) */
  int64_t last_ms;
} lw_event_state;

/* Consent and prompt history: what must never be forgotten silently. */
typedef struct {
  uint8_t install[16];
  char code[LW_CODE_LEN];
  uint8_t secret[16];
  uint8_t consent; /* LW_CONSENT_* */
  int64_t consent_ms;
  uint32_t shown_total, dismiss_total, share_total;
  int64_t shown_ms[LW_SHOWN_RING]; /* most recent first; 0 = empty */
  int64_t last_dismiss_ms, last_share_ms;
  char open_id[LW_ID_HEX]; /* the prompt on screen, "" if none */
  char open_action[LW_NAME_MAX];
  int64_t open_since_ms;
  int64_t history_unknown_until_ms; /* set when history was lost */
} lw_guard;

typedef struct {
  int64_t first_seen_ms;
  lw_event_state ev[LW_MAX_EVENTS]; /* aligned with config events */
} lw_behaviour;

struct lw_engine {
  lw_config cfg;
  lw_rng rng;
  lw_guard guard;
  lw_behaviour beh;
  lw_outbox *outbox;
  lw_decision last;
  char install_hex[LW_KEY_HEX];
};

/* Fresh guard state: new install key, referral code and secret from the engine's rng. */
void lw_engine_fresh_guard(lw_engine *e);
void lw_engine_refresh_install_hex(lw_engine *e);
#define lw_name_hash lw_fnv1a /* event names are matched across config changes by hash */

#endif
