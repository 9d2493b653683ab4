#!/usr/bin/env python3
"""sim-reward.py: the reward block that prices decisions as loopwise-sim's business earns.

  python3 src/tools/sim-reward.py [draws (2000000)]

Derived only from the simulator's committed parameters (src/tools/sim.c: make_user, respond,
"referees: the parameters"), never from a lift result (README "Proving the lift", "Pricing the
reward as the simulator earns"). The simulator's value is, per converted referee, ARPU[plan] x
min(L, 24) months less the incentive (variants[].cost), with no charge per prompt. The trainer's
label, inside the 45-day attribution window, sees a conversion and (at conversion + 30 days) a
retained_30 report when L > 1; retained_90 (+90 days) never falls inside the window and churned
arrives within it only for L < 1.5, so they are left unpriced. A linear label then matches the
simulator's value in expectation when
  value_per_conversion = E[ARPU x min(L, 24) | converted, L <= 1]
  value_per_retained   = E[ARPU x min(L, 24) | converted, L > 1] - value_per_conversion
  value_per_share      = E[sum over the share's converted referees of (ARPU x min(L, 24) - cost)]
  fatigue_cost         = 0 (the simulator's value has no per-prompt term)
Since 2026-12-03 the simulated host also reports each retained referee's monthly revenue (its
plan's ARPU) once, beside its retained_30, so the label can price a referee by what it pays:
  value_per_conversion + value_per_retained + revenue_weight x ARPU ~ ARPU x min(L, 24), L > 1,
fitted by weighted least squares over the retained referees (both prices are at least 0, so an
intercept below value_per_conversion is replaced by a fit through it). The second block printed.
The expectations are over a prompted referrer drawn as the simulator draws users (plan 60/30/10,
willingness plan_will + N(0, 1)), weighted by the chance they share at a project_completed
milestone (z = -3.1 + will + 0.6; variant_effect, recency, dismissals and busy days are left out),
the variant drawn by models/referral.json's rules weights (credit_10 cost 10 x3, month_free 25 x1),
the habit channel by plan, then reach, landing (not busy), conversion, the referee's plan and its
lifetime exactly as sim.c's referee block computes them. Monte Carlo with a fixed seed: the same
numbers each run; they are rounded to integers for the config.
"""
import math, random, sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000000
rng = random.Random(11)
sig = lambda z: 1 / (1 + math.exp(-z))
ARPU = [4.0, 20.0, 60.0]
PLAN_WILL = [-0.4, 0.2, 0.5]
HABIT = [[0.30, 0.20, 0.05, 0.05, 0.15, 0.25], [0.25, 0.20, 0.20, 0.15, 0.10, 0.10], [0.15, 0.15, 0.35, 0.25, 0.05, 0.05]]
CHAN = [(0.0, 0.0, 1.0), (-0.2, 0.0, 1.0), (0.2, 0.3, 0.85), (-0.3, 0.2, 0.8), (-0.8, -0.5, 1.3), (0.5, 0.1, 1.0)]
FIT = [[0, 0, 0, 0, 0, 1], [0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 0, 0]]
VARIANTS = [(10.0, 3), (25.0, 1)]  # (cost, rules weight) of models/referral.json
REF_LAND_BASE, REF_CONV_BASE, REF_CONV_AFTER_WIN, REF_DEAL_SEEKERS, REF_FIT = 0.2, -1.2, 0.2, 0.1, 0.3


def poisson(lam):
    l, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= l:
            return k
        k += 1


def pick(ws):
    x, acc = rng.random() * sum(ws), 0.0
    for i, w in enumerate(ws):
        acc += w
        if x < acc:
            return i
    return len(ws) - 1


w_sum = 0.0
share_val = 0.0
lo_w = lo_v = hi_w = hi_v = 0.0
ra = raa = rv = rav = 0.0  # sums for the revenue fit (retained referees)
for _ in range(N):
    x = rng.random()
    plan = 0 if x < 0.6 else 1 if x < 0.9 else 2
    will = PLAN_WILL[plan] + rng.gauss(0, 1)
    wt = sig(-3.1 + will + 0.6)  # P(share) of this prompt: weight of the share drawn below
    cost = VARIANTS[pick([v[1] for v in VARIANTS])][0]
    ch = pick(HABIT[plan])
    land, conv, cm = CHAN[ch]
    lg = math.log(1 + cost / 10)
    val = 0.0
    for _k in range(1 + poisson(0.4 + 0.4 * max(will, 0))):
        if rng.random() >= sig(REF_LAND_BASE + land):
            continue
        pc = sig(REF_CONV_BASE + 0.25 * lg + 0.35 * will + 0.3 * (plan == 2) + conv + (REF_FIT if FIT[plan][ch] else 0) + REF_CONV_AFTER_WIN)
        if rng.random() >= pc:
            continue
        rplan = plan if rng.random() < 0.6 else 0
        w = min(max(will, -1), 1.5)
        h = (0.09 - 0.025 * w - 0.02 * (rplan == 2)) * cm * (1 + REF_DEAL_SEEKERS * lg)
        h = min(max(h, 0.02), 0.5)
        months = -math.log(1 - rng.random()) / -math.log(1 - h)
        v = ARPU[rplan] * min(months, 24)
        val += v - cost
        if months > 1:
            hi_w += wt; hi_v += wt * v
            a = ARPU[rplan]
            ra += wt * a; raa += wt * a * a; rv += wt * v; rav += wt * a * v
        else:
            lo_w += wt; lo_v += wt * v
    w_sum += wt
    share_val += wt * val

vc = lo_v / lo_w
vr = hi_v / hi_w - vc
vs = share_val / w_sum
# With revenue reports (the host reports a retained referee's monthly price, once, with its
# retained_30): v ~ value_per_conversion + value_per_retained + revenue_weight x ARPU over the
# retained referees, by weighted least squares; both prices are at least 0 in the config, so an
# intercept below value_per_conversion fits the slope through it instead.
rw = (rav / hi_w - (ra / hi_w) * (rv / hi_w)) / (raa / hi_w - (ra / hi_w) ** 2)
c0 = rv / hi_w - rw * ra / hi_w
if c0 < vc:
    rw = (rav - vc * ra) / raa
    c0 = vc
print(f"E[value | converted, L <= 1] = {vc:.2f}")
print(f"E[value | converted, L > 1] = {hi_v / hi_w:.2f}")
print(f"P(L > 1 | converted) = {hi_w / (hi_w + lo_w):.3f}")
print(f"E[value of a share, less incentives] = {vs:.2f}")
print('without revenue reports: "reward": {"value_per_conversion": %d, "value_per_retained": %d, "value_per_retained_90": 0, "churn_cost": 0, "value_per_share": %d}, "fatigue_cost": 0'
      % (round(vc), round(vr), round(vs)))
print(f"retained referees: value = {c0:.2f} + {rw:.3f} x monthly revenue (weighted least squares)")
print('with revenue reports:    "reward": {"value_per_conversion": %d, "value_per_retained": %d, "value_per_retained_90": 0, "churn_cost": 0, "revenue_weight": %.1f, "value_per_share": %d}, "fatigue_cost": 0'
      % (round(vc), round(c0 - vc), rw, round(vs)))
