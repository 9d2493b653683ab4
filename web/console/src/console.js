// console.js: the product manager's console (README "The console"). Served by loopwise-ingest
// at /console under a strict CSP: this file and console.css only, no inline code. Every figure
// comes from the server's report (computed in C from the store); the page only draws it. Every
// chart has its table beside it and a CSV link to the server's CSV of the same table.
import uPlot from 'uplot';

const $ = (sel) => document.querySelector(sel);
const state = { csrf: '', site: '', report: null };

async function api(path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (opts.method === 'POST') {
    headers['Content-Type'] = 'application/json';
    headers['X-Loopwise-CSRF'] = state.csrf;
  }
  const res = await fetch(path, { ...opts, headers, credentials: 'same-origin' });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(body.error || `HTTP ${res.status}`), { status: res.status });
  return body;
}

const siteQuery = () => `site=${encodeURIComponent(state.site)}`;
const pct = (x) => (x == null ? '–' : `${(100 * x).toFixed(1)}%`);
const money = (x) => (x == null ? '–' : x.toFixed(2));
const when = (ms) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '');

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

const STAGES = ['decisions', 'prompts', 'shares', 'landings', 'conversions', 'retained'];
const TITLES = {
  variants: 'By variant', segments: 'By segment', modes: 'By arm (rules, model, holdout)', weeks: 'Weekly trend',
  channels: 'By share channel (the decision\'s first share or copy)',
};
// The stages a table has: a channel is a share's, so the channels table starts at shares.
const stagesOf = (name) => (name === 'channels' ? STAGES.slice(2) : STAGES);

function breakdownTable(name, rows) {
  const stages = stagesOf(name);
  const head = el('tr', {}, el('th', { scope: 'col', text: name === 'weeks' ? 'Week' : name === 'channels' ? 'Channel' : 'Key' }));
  for (const s of stages) head.append(el('th', { scope: 'col', text: s }));
  for (const s of stages.slice(1)) head.append(el('th', { scope: 'col', text: `${s} rate [95%]` }));
  for (const h of ['referred', 'retained customers', 'incentive cost', 'cost / referred', 'cost / retained', 'value'])
    head.append(el('th', { scope: 'col', text: h }));
  const body = el('tbody');
  for (const r of rows) {
    const tr = el('tr', { 'data-key': r.key }, el('th', { scope: 'row', text: r.key }));
    for (const s of stages) tr.append(el('td', { 'data-col': s, text: String(r[s]) }));
    for (const s of stages.slice(1)) {
      const q = r.rates[s];
      const td = el('td', { 'data-col': `${s}_rate`, 'data-rate': String(q.rate ?? ''), 'data-lo': String(q.lo), 'data-hi': String(q.hi) });
      td.append(pct(q.rate), ' ', el('span', { class: 'interval', text: `[${pct(q.lo)}, ${pct(q.hi)}]` }));
      tr.append(td);
    }
    tr.append(el('td', { 'data-col': 'referred', text: String(r.referred) }),
      el('td', { 'data-col': 'referred_retained', text: String(r.referred_retained) }),
      el('td', { 'data-col': 'incentive_cost', text: money(r.incentive_cost) }),
      el('td', { 'data-col': 'cost_per_referred', text: money(r.cost_per_referred) }),
      el('td', { 'data-col': 'cost_per_retained', text: money(r.cost_per_retained) }),
      el('td', { 'data-col': 'value', text: money(r.value) }));
    body.append(tr);
  }
  return el('table', { id: `table-${name}` }, el('caption', { text: TITLES[name] }), el('thead', {}, head), body);
}

// Charts are drawn in the frame after their holder is on the page (uPlot measures it); a page
// is ready (body[data-ready]) once the charts it asked for are drawn.
let drawing = [];
function draw(make) {
  drawing.push(new Promise((done) => requestAnimationFrame(() => { try { make(); } finally { done(); } })));
}

// A chart of a breakdown: conversion rate with its interval per row (weeks: over time); the
// channels: of the shares, those that brought a landing and a conversion.
function chart(name, rows, width) {
  const base = name === 'channels' ? 'shares' : 'decisions';
  const [first, second] = name === 'channels' ? ['landings', 'conversions'] : ['shares', 'conversions'];
  const holder = el('div', { class: 'chart', role: 'img', 'aria-label': `${TITLES[name]}: share of ${base} that brought a ${name === 'channels' ? 'landing and a ' : ''}conversion (the table beside it has the figures)` });
  if (!rows.length) return holder;
  const xs = rows.map((_, i) => i);
  const conv = rows.map((r) => (r[base] ? r[second] / r[base] : null));
  const shares = rows.map((r) => (r[base] ? r[first] / r[base] : null));
  const opts = {
    width, height: 220,
    scales: { x: { time: false } },
    axes: [{ values: (u, ticks) => ticks.map((t) => rows[t]?.key ?? '') }, { size: 64, values: (u, ticks) => ticks.map((t) => `${(100 * t).toFixed(1)}%`) }],
    series: [{}, { label: `${first === 'shares' ? 'shared' : 'landed'} / ${base}`, stroke: '#0969da' }, { label: `converted / ${base}`, stroke: '#1a7f37' }],
  };
  draw(() => new uPlot(opts, [xs, shares, conv], holder));
  return holder;
}

function renderReport(rep) {
  state.report = rep;
  $('#method').textContent = `Intervals: ${rep.interval}. A stage counts the decisions that reached it; referred and retained customers are the host's reports.`;
  const tables = $('#tables');
  tables.replaceChildren();
  const width = Math.min(560, Math.max(280, window.innerWidth - 48));
  for (const name of ['variants', 'segments', 'modes', 'weeks', 'channels']) {
    const rows = rep.tables[name];
    const csv = el('a', { href: `/console/api/report.csv?table=${name}&${siteQuery()}`, download: `${name}.csv`, id: `csv-${name}`, text: `CSV of ${name}` });
    tables.append(el('h2', { text: TITLES[name] }),
      el('div', { class: 'breakdown' }, chart(name, rows, width), el('div', { class: 'scroll' }, breakdownTable(name, rows), csv)));
  }
  const lb = $('#learning tbody');
  lb.replaceChildren();
  for (const d of rep.learning.differences) {
    const diff = d.difference == null ? 'not enough data' : `${pct(d.difference)} [${pct(d.lo)}, ${pct(d.hi)}]`;
    lb.append(el('tr', {}, el('td', { text: d.arm }), el('td', { text: d.against }), el('td', { text: d.measure }),
      el('td', { text: `${d.arm_k}/${d.arm_n}` }), el('td', { text: `${d.against_k}/${d.against_n}` }),
      el('td', { 'data-lo': String(d.lo), 'data-hi': String(d.hi), text: diff })));
  }
  const mb = $('#models tbody');
  mb.replaceChildren();
  for (const m of rep.models) mb.append(el('tr', {}, el('td', {}, el('code', { text: JSON.stringify(m) }))));
  if (!rep.models.length) mb.append(el('tr', {}, el('td', { text: 'no promotion rounds logged (models_dir/<site>/promotions.log)' })));
  $('#config').textContent = rep.config ? JSON.stringify(rep.config, null, 2) : 'no console_config set';
}

// A table body of console actions (who, what, when, on which row), newest first: the store's
// record (README "Console actions"), so every replica shows the same.
function actionRows(tb, actions, columns, empty) {
  tb.replaceChildren();
  for (const a of actions) {
    const tr = el('tr', { 'data-target': a.target, 'data-ref': String(a.ref), 'data-action': a.action },
      el('td', { 'data-col': 'at', text: when(a.at) }), el('td', { 'data-col': 'user', text: a.user }),
      el('td', { 'data-col': 'action', text: a.action }));
    if (columns > 4) tr.append(el('td', { 'data-col': 'target', text: a.target }));
    tr.append(el('td', { 'data-col': 'ref', text: String(a.ref) }));
    tb.append(tr);
  }
  if (!actions.length) tb.append(el('tr', {}, el('td', { colspan: String(columns), text: empty })));
}

async function loadActions() {
  const r = await api(`/console/api/actions?${siteQuery()}`);
  $('#csv-actions').href = `/console/api/actions.csv?${siteQuery()}`;
  actionRows($('#actions tbody'), r.actions, 5, 'no console actions yet');
}

async function loadReviews() {
  const [rv, rw, ac] = await Promise.all([api(`/console/api/reviews?${siteQuery()}`), api(`/console/api/rewards?${siteQuery()}`),
    api(`/console/api/actions?${siteQuery()}`)]);
  actionRows($('#reviewed tbody'), ac.actions.filter((a) => a.target === 'review'), 4, 'no review decided yet');
  const tb = $('#reviews tbody');
  tb.replaceChildren();
  for (const r of rv.reviews) {
    const approve = el('button', { type: 'button', 'data-id': String(r.id), 'data-decision': 'approve', text: 'Approve' });
    const reject = el('button', { type: 'button', 'data-id': String(r.id), 'data-decision': 'reject', text: 'Reject' });
    tb.append(el('tr', { 'data-id': String(r.id) }, el('td', { text: String(r.id) }), el('td', { text: r.code }),
      el('td', { text: r.event }), el('td', { text: r.reason }), el('td', { text: when(r.at) }),
      el('td', { text: when(r.received_at) }), el('td', {}, approve, ' ', reject)));
  }
  if (!rv.reviews.length) tb.append(el('tr', {}, el('td', { colspan: '7', text: 'nothing waits for review' })));
  const wb = $('#rewards tbody');
  wb.replaceChildren();
  for (const a of rw.attributions)
    wb.append(el('tr', { 'data-code': a.code }, el('td', { text: a.code }), el('td', { 'data-col': 'conversions', text: String(a.conversions) }),
      el('td', { text: when(a.first_at) }), el('td', { text: when(a.last_at) })));
}

async function loadDeliveries() {
  const r = await api(`/console/api/deliveries?${siteQuery()}`);
  $('#deliveries-note').textContent = r.configured
    ? 'Approved and counted conversions, posted to webhook_url signed (README "Webhooks"); a failed one can be sent again.'
    : 'No webhook_url is configured: nothing is sent.';
  const tb = $('#deliveries tbody');
  tb.replaceChildren();
  for (const d of r.deliveries) {
    const action = el('td');
    if (d.state === 'failed') action.append(el('button', { type: 'button', 'data-resend': String(d.id), text: 'Send again' }));
    tb.append(el('tr', { 'data-id': String(d.id), 'data-state': d.state }, el('td', { text: String(d.id) }), el('td', { text: d.key }),
      el('td', { 'data-col': 'state', text: d.state }), el('td', { 'data-col': 'attempts', text: String(d.attempts) }),
      el('td', { text: d.last_status ? String(d.last_status) : '' }), el('td', { text: d.last_error }),
      el('td', { text: when(d.created_at) }), el('td', { text: d.state === 'pending' ? when(d.next_at) : '' }),
      el('td', { text: when(d.delivered_at) }),
      el('td', { 'data-col': 'resent', text: d.resent_by ? `${d.resent_by}, ${when(d.resent_at)}` : '' }), action));
  }
  if (!r.deliveries.length) tb.append(el('tr', {}, el('td', { colspan: '11', text: 'no deliveries yet' })));
}

// The fairness audit (README "The console"): per value of the config's fairness attribute,
// the server's rates with their intervals and the audit's flags (loopwise/audit.h), a chart
// of the three rates beside the table, and the CSV of the same rows.
async function loadFairness() {
  const r = await api(`/console/api/fairness?${siteQuery()}`);
  $('#fairness-method').textContent = r.attribute ? `Attribute ${r.attribute}: ${r.method}.` : 'The product config (console_config) names no fairness attribute.';
  $('#csv-fairness').href = `/console/api/fairness.csv?${siteQuery()}`;
  const tb = $('#fairness tbody');
  tb.replaceChildren();
  for (const row of r.rows) {
    const tr = el('tr', { 'data-key': row.key, 'data-flagged': String(row.flagged) }, el('th', { scope: 'row', text: row.value }));
    for (const c of ['decisions', 'prompts', 'shares', 'conversions']) tr.append(el('td', { 'data-col': c, text: String(row[c]) }));
    for (const m of ['exposure', 'share', 'conversion']) {
      const q = row[m];
      const td = el('td', { 'data-col': `${m}_rate`, 'data-rate': String(q.rate ?? ''), 'data-lo': String(q.lo), 'data-hi': String(q.hi) });
      td.append(pct(q.rate), ' ', el('span', { class: 'interval', text: `[${pct(q.lo)}, ${pct(q.hi)}]` }));
      tr.append(td, el('td', { 'data-col': `${m}_ratio`, text: q.ratio.toFixed(2) }));
    }
    tr.append(el('td', { 'data-col': 'flags', text: row.flags.length ? `below ${r.flag_ratio}: ${row.flags.join(', ')}` : '' }));
    tb.append(tr);
  }
  if (!r.rows.length) tb.append(el('tr', {}, el('td', { colspan: '12', text: 'no fairness attribute, or no values' })));
  const holder = el('div', { class: 'chart', role: 'img', 'aria-label': 'Exposure, share and conversion rate per value (the table beside it has the figures)' });
  $('#fairness-chart').replaceChildren(holder);
  if (r.rows.length) {
    const width = Math.min(560, Math.max(280, window.innerWidth - 48));
    const series = ['exposure', 'share', 'conversion'].map((m) => r.rows.map((x) => x[m].rate));
    draw(() => new uPlot({
      width, height: 220, scales: { x: { time: false } },
      axes: [{ values: (u, ticks) => ticks.map((t) => r.rows[t]?.value ?? '') }, { size: 64, values: (u, ticks) => ticks.map((t) => `${(100 * t).toFixed(1)}%`) }],
      series: [{}, { label: 'exposure', stroke: '#8250df' }, { label: 'share rate', stroke: '#0969da' }, { label: 'conversion rate', stroke: '#1a7f37' }],
    }, [r.rows.map((_, i) => i), ...series], holder));
  }
}

// Approval requests (README "Approval requests"): newest first; a pending one has its buttons,
// an answered one says who and when, an expired one says so and has none.
async function loadApprovals() {
  const r = await api(`/console/api/approvals?${siteQuery()}`);
  const tb = $('#approvals tbody');
  tb.replaceChildren();
  for (const a of r.approvals) {
    const action = el('td');
    if (a.answer === 'pending')
      for (const [d, label] of [['approve', 'Approve'], ['decline', 'Decline']])
        action.append(el('button', { type: 'button', 'data-id': String(a.id), 'data-decision': d, text: label }), ' ');
    const account = Object.entries(a.attrs).map(([k, v]) => `${k}: ${v}`).join(', ');
    tb.append(el('tr', { 'data-id': String(a.id), 'data-decision': a.decision, 'data-state': a.answer },
      el('td', { text: String(a.id) }), el('td', {}, el('code', { text: a.decision })), el('td', { text: a.action }),
      el('td', { 'data-col': 'account', text: account }), el('td', { text: a.reason }),
      el('td', { text: when(a.received_at) }), el('td', { text: when(a.expires_at) }),
      el('td', { 'data-col': 'state', text: a.answer }),
      el('td', { 'data-col': 'answered', text: a.answered_by ? `${a.answered_by}, ${when(a.answered_at)}` : '' }),
      el('td', { 'data-col': 'device', text: a.device_answer ? `${a.device_answer}, ${when(a.device_at)}` : '' }), action));
  }
  if (!r.approvals.length) tb.append(el('tr', {}, el('td', { colspan: '11', text: 'no approval requests' })));
}

async function show(page) {
  for (const b of document.querySelectorAll('#nav button'))
    if (b.dataset.page === page) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  for (const p of ['funnel', 'reviews', 'fairness', 'approvals', 'deliveries', 'actions', 'models']) $(`#page-${p}`).hidden = p !== page;
  document.body.dataset.page = page;
  document.body.dataset.ready = '';
  if (page === 'reviews') await loadReviews();
  else if (page === 'deliveries') await loadDeliveries();
  else if (page === 'approvals') await loadApprovals();
  else if (page === 'fairness') await loadFairness();
  else if (page === 'actions') await loadActions();
  else renderReport(await api(`/console/api/report?${siteQuery()}`));
  const charts = drawing;
  drawing = [];
  await Promise.all(charts);
  document.body.dataset.ready = page;
}

async function start() {
  let session;
  try {
    session = await api('/console/api/session');
  } catch (e) {
    if (e.status === 401) {
      $('#login').hidden = false;
      document.body.dataset.ready = 'login';
      return;
    }
    throw e;
  }
  state.csrf = session.csrf;
  $('#login').hidden = true;
  $('#nav').hidden = $('#who').hidden = false;
  $('#user').textContent = session.user;
  const sel = $('#site');
  sel.replaceChildren(...session.sites.map((s) => el('option', { value: s, text: s })));
  state.site = session.sites[0];
  await show('funnel');
}

document.addEventListener('DOMContentLoaded', () => {
  $('#login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    try {
      await api('/console/login', { method: 'POST', body: JSON.stringify({ name: f.get('name'), password: f.get('password') }) });
      await start();
    } catch (e) {
      $('#login-error').textContent = e.message;
    }
  });
  $('#nav').addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-page]');
    if (b) show(b.dataset.page);
  });
  $('#site').addEventListener('change', (ev) => { state.site = ev.target.value; show(document.body.dataset.page || 'funnel'); });
  $('#logout').addEventListener('click', async () => {
    await api('/console/logout', { method: 'POST', body: '{}' });
    location.reload();
  });
  $('#reviews').addEventListener('click', async (ev) => {
    const b = ev.target.closest('button[data-decision]');
    if (!b) return;
    document.body.dataset.ready = '';
    try {
      await api(`/console/api/reviews/${b.dataset.id}?${siteQuery()}`, { method: 'POST', body: JSON.stringify({ decision: b.dataset.decision }) });
      $('#review-status').textContent = `${b.dataset.decision === 'approve' ? 'Approved' : 'Rejected'} report ${b.dataset.id}`;
    } catch (e) {
      $('#review-status').textContent = e.message;
    }
    await loadReviews();
    document.body.dataset.ready = 'reviews';
  });
  $('#approvals').addEventListener('click', async (ev) => {
    const b = ev.target.closest('button[data-decision]');
    if (!b) return;
    document.body.dataset.ready = '';
    try {
      const r = await api(`/console/api/approvals/${b.dataset.id}?${siteQuery()}`, { method: 'POST', body: JSON.stringify({ decision: b.dataset.decision }) });
      $('#approvals-status').textContent = `Request ${r.id} ${r.answer} by ${r.answered_by}`;
    } catch (e) {
      $('#approvals-status').textContent = e.message;
    }
    await loadApprovals();
    document.body.dataset.ready = 'approvals';
  });
  $('#deliveries').addEventListener('click', async (ev) => {
    const b = ev.target.closest('button[data-resend]');
    if (!b) return;
    document.body.dataset.ready = '';
    try {
      await api(`/console/api/deliveries/${b.dataset.resend}?${siteQuery()}`, { method: 'POST', body: '{}' });
      $('#deliveries-status').textContent = `Delivery ${b.dataset.resend} will be sent again`;
    } catch (e) {
      $('#deliveries-status').textContent = e.message;
    }
    await loadDeliveries();
    document.body.dataset.ready = 'deliveries';
  });
  start().catch((e) => { document.body.dataset.error = e.message; });
});
