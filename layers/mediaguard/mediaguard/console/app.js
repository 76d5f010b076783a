// mediaguard review console: one static page, vanilla JS, no build step, nothing loaded
// from anywhere but its own origin. It reads the API's base URL from config.json.
//
// Reviewer wellness: media is shown blurred and greyscale until the reviewer reveals it,
// per item; opening another item hides it again.
// Safety: every value from the API is inserted as text (textContent), never as HTML; the
// token lives in sessionStorage (gone when the tab closes) and is sent only to the API.

import {
  $, ApiError, api, el, facts, formatValue, number, risk, say, seconds, state, when,
} from './lib.js';
import * as wellness from './wellness.js';
import * as find from './search.js';
import * as banks from './banks.js';
import * as strip from './frames.js';
import * as operators from './operators.js';

const TOKEN_KEY = 'mediaguard.token';
const LANES = [
  ['fast', 'Fast lane'],
  ['normal', 'Normal lane'],
  ['escalated', 'Escalated (senior reviewers)'],
  ['qa', 'Quality samples (blind)'],
];


// --- errors ---------------------------------------------------------------------------

function fail(error) {
  if (error instanceof ApiError && error.status === 401) {
    signOut('Your session is no longer valid; sign in again.');
    return;
  }
  say(error.message || String(error), 'error');
}

// --- sign in / out -----------------------------------------------------------------------

async function signIn(token) {
  state.token = token;
  try {
    // One call says who this is and what the roles allow (no probing of senior routes).
    state.me = await api('GET', '/review/me');
  } catch (error) {
    state.token = null;
    if (error instanceof ApiError && error.status === 401) throw new Error('That token was not accepted.');
    if (error instanceof ApiError && error.status === 403) throw new Error('This token has no reviewer role.');
    throw error;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.reasons = await api('GET', '/review/reasons');
  fillReasons($('reason'), state.reasons.review, '');
  state.senior = state.me.senior;
  $('tab-appeals').hidden = !state.senior;
  $('tab-banks').hidden = !state.me.admin;
  $('tab-ops').hidden = !state.me.admin;
  $('add-to-bank-row').hidden = !state.me.admin;
  $('whoami').textContent = `${state.me.name} (${state.me.role})`;
  $('whoami').hidden = false;
  wellness.loadSettings(state.me.sub);
  showExposures(state.me.exposures_today);
  $('signin-view').hidden = true;
  $('nav').hidden = false;
  show('queue-view');
  await loadQueue();
  say(`Signed in as ${state.me.name}, ${state.me.role}.`);
  if (state.me.admin) await banks.loadBanks().catch(fail); // fills the "add to bank" picker
  await openFromHash();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  // (opening: an item answer still on its way is not rendered into the next session)
  Object.assign(state, { token: null, me: null, reasons: null, senior: false, current: null, claimed: false,
    opening: state.opening + 1 });
  $('whoami').hidden = true;
  $('exposures').hidden = true;
  wellness.signOut();
  $('nav').hidden = true;
  $('queue-view').hidden = true;
  $('appeals-view').hidden = true;
  $('streams-view').hidden = true;
  $('find-view').hidden = true;
  $('banks-view').hidden = true;
  $('ops-view').hidden = true;
  $('item').hidden = true;
  $('item-empty').hidden = false;
  $('media-img').removeAttribute('src');
  $('signin-view').hidden = false;
  $('token').value = '';
  say(message || 'Signed out.');
  $('token').focus();
}

function show(viewId) {
  for (const tab of document.querySelectorAll('.tab')) {
    const active = tab.dataset.view === viewId;
    tab.setAttribute('aria-pressed', String(active));
    $(tab.dataset.view).hidden = !active;
  }
}

// --- queue ---------------------------------------------------------------------------------

// The queue polls itself (no push channel exists in local mode or behind API Gateway's
// HTTP API); 10 s keeps a claimed card's state current without loading the API.
const POLL_MS = 10000;

async function loadQueue() {
  const tasks = [];
  for (const [lane] of LANES) {
    if (lane === 'escalated' && !state.senior) continue;
    const page = await api('GET', `/review/queue?lane=${lane}&limit=50`);
    tasks.push(...page.items);
  }
  state.tasks = tasks;
  fillSignalFilter(tasks);
  renderQueue();
  $('queue-updated').textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  return tasks.length;
}

function fillSignalFilter(tasks) {
  const select = $('filter-signal');
  const wanted = select.value;
  const names = [...new Set(tasks.flatMap((t) => t.signals || []))].sort();
  select.replaceChildren(el('option', { value: '', text: 'Any signal' }),
    ...names.map((name) => el('option', { value: name, text: name })));
  select.value = names.includes(wanted) ? wanted : '';
}

const SORTS = {
  priority: () => 0, // the API's order: highest priority first, then oldest
  oldest: (a, b) => new Date(a.enqueued_at) - new Date(b.enqueued_at),
  sla: (a, b) => new Date(a.due_at) - new Date(b.due_at),
};

// The tasks the filters keep, in the chosen order, lane by lane (fast first).
function visibleTasks() {
  const lane = $('filter-lane').value;
  const signal = $('filter-signal').value;
  const age = Number($('filter-age').value || 0);
  const overdueOnly = $('filter-overdue').checked;
  const now = Date.now();
  const sort = SORTS[$('queue-sort').value] || SORTS.priority;
  const kept = state.tasks.filter((t) => (!lane || t.lane === lane)
    && (!signal || (t.signals || []).includes(signal))
    && (!age || now - new Date(t.enqueued_at).getTime() >= age * 60000)
    && (!overdueOnly || new Date(t.due_at).getTime() < now));
  const order = LANES.map(([l]) => l);
  return kept.map((t, i) => [t, i]).sort(([a, i], [b, j]) => (order.indexOf(a.lane) - order.indexOf(b.lane))
    || sort(a, b) || i - j).map(([t]) => t);
}

function renderQueue() {
  const container = $('queue');
  const shown = visibleTasks();
  const sections = [];
  for (const [lane, title] of LANES) {
    if (lane === 'escalated' && !state.senior) continue;
    const tasks = shown.filter((t) => t.lane === lane);
    if (!tasks.length && $('filter-lane').value && $('filter-lane').value !== lane) continue;
    const list = el('ol', { class: 'tasks', 'aria-label': title });
    for (const task of tasks) list.append(el('li', {}, taskButton(task)));
    if (!tasks.length) list.append(el('li', { class: 'help', text: 'Nothing waiting.' }));
    sections.push(el('section', { class: `lane lane-${lane}` },
      el('h3', {}, title, el('span', { class: 'count', text: ` (${tasks.length})` })), list));
  }
  // The queue refreshes itself every few seconds: a keyboard or screen-reader user moving
  // through it keeps their place on the same task instead of being sent back to the page.
  const focused = container.contains(document.activeElement) && document.activeElement.closest('.task');
  container.replaceChildren(...sections);
  if (focused) {
    const again = container.querySelector(`.task[data-media-id="${CSS.escape(focused.dataset.mediaId)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
  tick();
}

function taskButton(task) {
  return el('button', {
    type: 'button',
    class: 'task',
    dataset: { mediaId: task.media_id, state: task.state },
    'aria-current': task.media_id === state.current ? 'true' : null,
    onclick: () => openItem(task.media_id).catch(fail),
  },
  el('span', { class: 'task-line' },
    el('span', { class: `badge badge-${task.lane}`, text: task.lane }),
    el('strong', { text: `priority ${number(task.priority)}` }),
    el('span', { text: `risk ${risk(task.risk)}` }),
    el('span', { text: `reach ${Number(task.reach || 0).toLocaleString()}` })),
  el('span', { class: 'task-line help' },
    el('span', { class: 'sla', dataset: { due: task.due_at } }),
    el('span', { class: 'task-state', text: taskState(task) }),
    task.action ? el('span', { text: `automated: ${task.action}` }) : null),
  (task.signals || []).length ? el('span', { class: 'task-line help', text: task.signals.join(', ') }) : null,
  el('span', { class: 'task-id', text: task.media_id }));
}

// --- SLA countdowns ------------------------------------------------------------------------

function clock(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  const pad = (n) => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600);
  return `${h ? `${h} h ` : ''}${pad(Math.floor((s % 3600) / 60))} min ${pad(s % 60)} s`;
}

// Every element with data-due counts down each second and turns red once overdue.
function tick() {
  const now = Date.now();
  for (const node of document.querySelectorAll('[data-due]')) {
    const left = new Date(node.dataset.due).getTime() - now;
    const overdue = left < 0;
    node.textContent = overdue ? `overdue by ${clock(left)}` : `due in ${clock(left)}`;
    node.classList.toggle('overdue', overdue);
    const card = node.closest('.task');
    if (card) card.classList.toggle('overdue', overdue);
  }
}

function taskState(task) {
  if (task.state === 'claimed' && task.claimed_by) {
    return task.claimed_by === (state.me && state.me.sub) ? 'claimed by you' : `claimed by ${task.claimed_by}`;
  }
  return task.state;
}

// --- item -------------------------------------------------------------------------------------

async function openItem(mediaId) {
  cancelPendingRemove();
  // Two opens in quick succession (n pressed twice) may be answered out of order: only the
  // latest open may render, or the screen would show one item while decisions go to another.
  const opening = ++state.opening;
  const latest = () => opening === state.opening;
  state.current = mediaId;
  state.claimed = false;
  // Until this item renders, nothing may be decided: the previous item (and its reason)
  // is still on screen, and its player must not record a look against this id.
  $('reason').value = '';
  updateActions();
  for (const player of [$('media-video'), $('media-audio')]) player.pause();
  hideMedia();
  for (const button of document.querySelectorAll('.task')) {
    if (button.dataset.mediaId === mediaId) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
  let claimNote = '';
  try {
    const task = await api('POST', `/review/${encodeURIComponent(mediaId)}/claim`);
    if (!latest()) return;
    state.claimed = true;
    claimNote = `Claimed by you until ${when(task.lease_until)}.`;
    // The card said "queued": it is this reviewer's now.
    const card = document.querySelector(`.task[data-media-id="${CSS.escape(mediaId)}"] .task-state`);
    if (card) card.textContent = taskState(task);
  } catch (error) {
    if (!latest()) return;
    if (!(error instanceof ApiError) || ![403, 404, 409].includes(error.status)) closeItem(error);
    claimNote = `Not claimed: ${error.message}`;
  }
  let view;
  try {
    view = await api('GET', `/items/${encodeURIComponent(mediaId)}`);
  } catch (error) {
    if (latest()) closeItem(error);
    return;
  }
  if (!latest()) return;
  renderItem(view, claimNote);
  if (location.hash !== `#item/${mediaId}`) history.replaceState(null, '', `#item/${mediaId}`);
  $('item-title').focus();
}

// An open that failed: the previous item must not stay on screen with this one's id behind
// the decision buttons.
function closeItem(error) {
  $('item').hidden = true;
  $('item-empty').hidden = false;
  state.current = null;
  state.claimed = false;
  updateActions();
  throw error;
}

function renderItem(view, claimNote) {
  $('item-empty').hidden = true;
  $('item').hidden = false;
  $('item').dataset.mediaId = view.media_id;
  const task = view.task || {};
  facts($('item-facts'), [
    ['Media id', view.media_id],
    ['Status', view.status],
    ['Action in force', view.action],
    ['Proposed by scoring', view.proposed_action],
    ['Risk', risk(view.risk)],
    ['Policy', view.policy_version],
    ['Lane', task.lane],
    ['Task', task.state],
    ['Deadline', task.due_at && task.state !== 'decided' ? when(task.due_at) : null],
    ['Decision', task.decision_action ? `${task.decision_action} (${task.decision_reason}) by ${task.decided_by}` : null],
  ].filter(([, value]) => value !== undefined && value !== null));

  renderMedia(view);

  const signals = $('signals').tBodies[0];
  signals.replaceChildren(...(view.signals || []).map((s) => el('tr', {},
    el('th', { scope: 'row', text: s.name }),
    el('td', { text: number(s.value, 3) }),
    el('td', {}, el('span', { class: 'bar', vars: { '--share': Math.min(1, Math.max(0, s.contribution)) } }),
      el('span', { text: `+${number(s.contribution, 3)}` })))));
  if (!(view.signals || []).length) signals.append(el('tr', {}, el('td', { colspan: 3, text: 'No signals.' })));
  $('risk-total').textContent = risk(view.risk);

  renderProvenance(view.provenance);

  const matches = $('matches').tBodies[0];
  matches.replaceChildren(...(view.matches || []).map((m) => el('tr', {},
    el('td', { text: m.bank }), el('td', { text: m.kind }), el('td', { text: m.ref }),
    el('td', { text: m.signal }), el('td', { text: number(m.distance, Number.isInteger(m.distance) ? 0 : 3) }),
    el('td', { text: m.similarity == null ? '-' : number(m.similarity, 3) }))));
  if (!(view.matches || []).length) matches.append(el('tr', {}, el('td', { colspan: 6, text: 'No bank matches.' })));
  banks.renderSideBySide(view);

  renderHistory(view);

  const audit = view.audit || { records: 0, verified: false, events: [] };
  $('audit-summary').textContent = `${audit.records} records; hash chain ${audit.verified ? 'verified' : 'BROKEN'}.`;
  $('audit-summary').dataset.verified = String(audit.verified);
  $('audit-events').replaceChildren(...audit.events.map((e) => el('li', { dataset: { event: e.event } },
    el('span', { text: `#${e.seq} ${seconds(e.at)} ` }), el('strong', { text: e.event }), ` by ${e.actor}`,
    Object.keys(e.detail || {}).length ? el('span', { class: 'help', text: ` - ${formatValue(e.detail)}` }) : null)));

  $('claim-state').textContent = claimNote;
  const countdown = $('item-sla');
  countdown.hidden = !(task.due_at && task.state !== 'decided');
  if (!countdown.hidden) countdown.dataset.due = task.due_at;
  else delete countdown.dataset.due;
  renderEscalation(view.escalation);
  $('reason').value = '';
  $('note').value = '';
  renderBulk(view);
  updateActions();
  tick();
}

// A still shows in the reveal frame; a video's poster does, and the video plays below it,
// blurred until revealed; audio gets a player (nothing to blur).
function renderMedia(view) {
  const img = $('media-img');
  const video = $('media-video');
  const audio = $('media-audio');
  const url = view.media && view.media.url;
  const kind = view.media_type || 'image';
  $('media').hidden = !url;
  $('media-none').hidden = Boolean(url);
  video.hidden = !(url && kind === 'video');
  audio.hidden = !(url && kind === 'audio');
  $('media-toggle').hidden = Boolean(url && kind === 'audio');
  for (const player of [video, audio]) {
    player.pause();
    player.removeAttribute('src');
    player.removeAttribute('poster');
  }
  img.removeAttribute('src');
  strip.render(view, fail);
  if (!url) return;
  if (kind === 'video') {
    video.src = url;
    if (view.poster) {
      video.poster = view.poster.url;
      img.src = view.poster.url;
    }
  } else if (kind === 'audio') {
    audio.src = url;
  } else {
    img.src = url;
  }
  const frames = view.frames || {};
  const track = view.audio || {};
  $('media-kind').textContent = [
    kind,
    frames.count ? `${frames.count} frames analysed (${frames.method}${frames.truncated ? ', truncated' : ''})` : null,
    frames.duration_s ? `${Number(frames.duration_s).toFixed(1)} s` : null,
    track.present ? `audio: ${track.codec}, ${Number(track.duration_s || 0).toFixed(1)} s` : null,
    view.stream_id ? `segment of live stream ${view.stream_id}` : null,
  ].filter(Boolean).join('; ');
}

function renderEscalation(escalation) {
  const box = $('escalation');
  box.hidden = !escalation;
  if (!escalation) return;
  const why = escalation.by === 'sla'
    ? `The ${escalation.from_lane || ''} lane's deadline passed${escalation.due_at ? ` (${when(escalation.due_at)})` : ''}.`
    : `Escalated by ${escalation.actor}: ${escalation.reason_code || 'no reason code'}`
      + `${escalation.note ? ` - "${escalation.note}"` : ''}.`;
  $('escalation-text').textContent = `${why} (${seconds(escalation.at)})`;
}

// --- bulk: every queued match of the same banked entry ------------------------------------

function bulkTargets(view) {
  const entries = new Set((view.matches || []).map((m) => `${m.bank}/${m.ref}`));
  if (!entries.size || !state.me) return [];
  return (state.tasks || []).filter((t) => t.media_id !== view.media_id && t.state !== 'decided'
    && (!t.claimed_by || t.claimed_by === state.me.sub || new Date(t.lease_until).getTime() < Date.now())
    && (t.lane !== 'escalated' || state.senior)
    && (t.matched || []).some((m) => entries.has(m)));
}

function renderBulk(view) {
  const targets = bulkTargets(view);
  state.bulk = targets.map((t) => t.media_id);
  $('bulk').hidden = !targets.length;
  $('bulk-all').checked = false;
  const entries = [...new Set(targets.flatMap((t) => t.matched || []))]
    .filter((m) => (view.matches || []).some((x) => `${x.bank}/${x.ref}` === m));
  $('bulk-label').textContent = `Also apply the decision to the ${targets.length} other queued `
    + `match${targets.length === 1 ? '' : 'es'} of ${entries.join(', ')}`;
}

// Sliding-window counts are estimates (floats); a person reads them as whole uploads.
function count(value) {
  if (typeof value !== 'number' || Number.isInteger(value)) return value;
  return `about ${Math.round(value)}`;
}

function renderHistory(view) {
  const scored = view.scored_history;
  const now = view.uploader_history;
  const pairs = [['Uploader', view.uploader_ref ? `uploader #${view.uploader_ref} (pseudonymised)` : 'not recorded']];
  const source = scored || now || {};
  pairs.push(['Counts', scored ? 'as scoring saw them (the basis of this decision)' : (now ? 'now' : 'none recorded')]);
  for (const [key, value] of Object.entries(source)) {
    const current = scored && now && JSON.stringify(now[key]) !== JSON.stringify(value)
      ? ` (now ${formatValue(count(now[key]))})` : '';
    pairs.push([key.replaceAll('_', ' '), `${formatValue(count(value))}${current}`]);
  }
  facts($('history'), pairs);
}

function renderProvenance(p) {
  if (!p) {
    facts($('provenance'), [['Record', 'No provenance was read for this item.']]);
    return;
  }
  const c2pa = p.c2pa || {};
  const watermark = p.watermark || {};
  facts($('provenance'), [
    ['AI generated', p.ai_generated],
    ['C2PA', c2pa.present ? `${c2pa.state}` : 'no manifest'],
    ['C2PA generator', c2pa.generator],
    ['Digital source type', c2pa.digital_source_type],
    ['AI markers', uniqueMarkers(p.ai_markers || [])],
    ['Watermark', watermark.detected ? `detected (${watermark.kind})` : 'none found'],
    ['Checked by', p.readers],
    ['Reader errors', (p.errors || []).map((e) => `${e.reader}: ${e.error}`)],
  ].filter(([, value]) => value !== undefined && value !== null));
}

// Readers report the same marker under different spellings (PNG "parameters" and
// exiftool's "Parameters"): one line per marker, whatever its case.
function uniqueMarkers(markers) {
  const seen = new Map();
  for (const m of markers) {
    const key = `${m.source}:${m.value}`.toLowerCase();
    if (!seen.has(key)) seen.set(key, `${m.source}: ${m.value}`);
  }
  return [...seen.values()];
}

// --- media reveal (per item) ------------------------------------------------------------------

function hideMedia() {
  wellness.hidden();
  $('media').dataset.revealed = 'false';
  $('media-toggle').setAttribute('aria-pressed', 'false');
  $('media-toggle').setAttribute('aria-label', 'Reveal the media');
  $('media-state').textContent = 'Hidden.';
}

function showExposures(n) {
  $('exposures').textContent = `${n} reveal${n === 1 ? '' : 's'} today`;
  $('exposures').hidden = false;
}

async function recordReveal(mediaId) {
  const receipt = await api('POST', `/items/${encodeURIComponent(mediaId)}/reveal`);
  if (state.me) state.me.exposures_today = receipt.exposures_today;
  showExposures(receipt.exposures_today);
  wellness.counted(receipt.exposures_today);
}

function toggleMedia() {
  if (!state.current) return;
  const revealed = $('media').dataset.revealed !== 'true';
  // Every reveal is recorded (who, when); hiding again is not a look.
  if (revealed) recordReveal(state.current).catch(fail);
  if (!revealed) {
    hideMedia();
    return;
  }
  wellness.revealed(() => { hideMedia(); $('media-state').textContent = 'Blurred again automatically.'; });
  $('media').dataset.revealed = String(revealed);
  $('media-toggle').setAttribute('aria-pressed', String(revealed));
  $('media-toggle').setAttribute('aria-label', revealed ? 'Blur the media again' : 'Reveal the media');
  $('media-state').textContent = revealed ? 'Revealed: click again to blur.' : 'Hidden.';
}

// --- decisions ----------------------------------------------------------------------------------

function fillReasons(select, reasons, placeholder) {
  const keep = select.querySelector('option[value=""]');
  select.replaceChildren(keep || el('option', { value: '', text: placeholder || 'Choose a reason...' }));
  for (const reason of reasons) {
    select.append(el('option', { value: reason.code, text: `${reason.code} - ${reason.description}` }));
  }
}

function reasonActions(code) {
  const reason = (state.reasons ? state.reasons.review : []).find((r) => r.code === code);
  return reason ? reason.actions : [];
}

function updateActions() {
  const allowed = reasonActions($('reason').value);
  for (const button of document.querySelectorAll('#decide-form [data-action]')) {
    const fits = allowed.includes(button.dataset.action);
    button.disabled = !(state.claimed && fits);
    button.title = !state.claimed ? 'Claim the task first' : (fits ? '' : 'The chosen reason does not justify this action');
  }
}

// A removal waits this long for an undo before it is sent (the issue: confirmation or
// an undo window of a few seconds). Nothing reaches the API until it runs out.
const UNDO_MS = 4000;

function decisionBody(action) {
  const body = { action, reason_code: $('reason').value };
  const note = $('note').value.trim();
  if (note) body.note = note;
  return body;
}

function requestDecision(action) {
  const body = decisionBody(action);
  const mediaId = state.current;
  const bulk = $('bulk-all').checked ? [...state.bulk] : [];
  if (action !== 'remove') return decide(mediaId, body, bulk);
  cancelPendingRemove();
  const until = Date.now() + UNDO_MS;
  const pending = { mediaId, timer: null, ticker: null };
  const bar = $('undo-bar');
  const show = () => {
    $('undo-text').textContent = `Removing ${mediaId}${bulk.length ? ` and ${bulk.length} more` : ''} in `
      + `${Math.max(0, Math.ceil((until - Date.now()) / 1000))} s.`;
  };
  show();
  bar.hidden = false;
  pending.ticker = setInterval(show, 250);
  pending.timer = setTimeout(() => {
    clearPending(pending);
    decide(mediaId, body, bulk).catch((error) => { updateActions(); fail(error); });
  }, UNDO_MS);
  state.pendingRemove = pending;
  $('undo').focus();
  return Promise.resolve();
}

function clearPending(pending) {
  clearTimeout(pending.timer);
  clearInterval(pending.ticker);
  if (state.pendingRemove === pending) state.pendingRemove = null;
  $('undo-bar').hidden = true;
}

function cancelPendingRemove(announce = false) {
  const pending = state.pendingRemove;
  if (!pending) return false;
  clearPending(pending);
  if (announce) say(`Removal of ${pending.mediaId} undone: nothing was sent.`, 'ok');
  updateActions();
  return true;
}

async function decide(mediaId, body, bulk = []) {
  const decision = await api('POST', `/review/${encodeURIComponent(mediaId)}/decision`, body);
  let done = 1;
  for (const other of bulk) {
    try {
      await api('POST', `/review/${encodeURIComponent(other)}/claim`);
      await api('POST', `/review/${encodeURIComponent(other)}/decision`, body);
      done += 1;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error; // a taken or decided task is skipped
    }
  }
  say(`Decided ${mediaId}: ${decision.action} (${decision.reason_code})`
    + `${bulk.length ? `; ${done} items in all` : ''}.`, 'ok');
  state.claimed = false;
  await loadQueue();
  // The next task opens by itself; the one just decided stays reachable by its URL.
  const next = nextTask(mediaId);
  if (next) await openItem(next.media_id);
  else {
    const view = await api('GET', `/items/${encodeURIComponent(mediaId)}`);
    renderItem(view, body.action === 'escalate' ? 'Escalated to senior reviewers.' : 'Decided. The queue is empty.');
  }
}

// The first task after ``fromId`` in the queue as shown that is free for this reviewer.
function nextTask(fromId) {
  const tasks = visibleTasks().filter((t) => t.state !== 'decided'
    && (!t.claimed_by || t.claimed_by === state.me.sub || new Date(t.lease_until).getTime() < Date.now()));
  const at = tasks.findIndex((t) => t.media_id === fromId);
  return tasks.slice(at + 1).concat(tasks.slice(0, Math.max(at, 0))).find((t) => t.media_id !== fromId) || null;
}

// --- keyboard ----------------------------------------------------------------------------------

const ACTION_KEYS = { 1: 'approve', 2: 'label', 3: 'blur', 4: 'limit', 5: 'remove', 6: 'escalate' };

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || !state.token) return;
  const target = event.target;
  const typing = target instanceof HTMLElement && (['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName)
    || target.isContentEditable);
  if (event.key === 'Escape' && cancelPendingRemove(true)) { event.preventDefault(); return; }
  if (typing || $('queue-view').hidden) return;
  const key = event.key.toLowerCase();
  if (key === 'n' || key === 'j') {
    const next = nextTask(state.current);
    if (next) openItem(next.media_id).catch(fail);
    else say('Nothing else is waiting.');
  } else if (key === 'v') {
    toggleMedia();
  } else if (key === 'r') {
    $('reason').focus();
  } else if (key === 'u') {
    cancelPendingRemove(true);
  } else if (ACTION_KEYS[key]) {
    const button = document.querySelector(`#decide-form [data-action="${ACTION_KEYS[key]}"]`);
    if (button && !button.disabled) button.click();
    else say(`${ACTION_KEYS[key]}: not available (claim the task and choose a reason that justifies it).`);
  } else if (key === '?') {
    $('shortcuts').open = !$('shortcuts').open;
  } else {
    return;
  }
  event.preventDefault();
}

// --- appeals ------------------------------------------------------------------------------------------

async function loadAppeals() {
  const page = await api('GET', '/appeals?state=open&limit=50');
  const container = $('appeals');
  if (!page.items.length) {
    container.replaceChildren(el('p', { class: 'help', text: 'No open appeals.' }));
    return;
  }
  container.replaceChildren(...page.items.map(appealCard));
}

function appealCard(appeal) {
  const id = appeal.appeal_id;
  const outcome = el('select', { id: `outcome-${id}`, required: true },
    el('option', { value: 'uphold', text: 'Uphold the action' }),
    el('option', { value: 'overturn', text: 'Overturn the action' }));
  const reason = el('select', { id: `appeal-reason-${id}`, required: true });
  const note = el('textarea', { id: `appeal-note-${id}`, maxlength: 1000, rows: 2 });
  const refill = () => {
    const fitting = state.reasons.appeal.filter((r) => r.actions.includes(outcome.value));
    reason.replaceChildren(...fitting.map((r) => el('option', { value: r.code, text: `${r.code} - ${r.description}` })));
  };
  outcome.addEventListener('change', refill);
  refill();
  const form = el('form', {
    class: 'appeal-form',
    onsubmit: (event) => {
      event.preventDefault();
      decideAppeal(id, outcome.value, reason.value, note.value.trim()).catch(fail);
    },
  },
  el('label', { for: outcome.id, text: 'Outcome' }), outcome,
  el('label', { for: reason.id, text: 'Reason code' }), reason,
  el('label', { for: note.id, text: 'Note (optional)' }), note,
  el('div', { class: 'actions' },
    el('button', { type: 'submit', text: 'Record the decision' }),
    el('button', { type: 'button', text: 'Open the item', onclick: () => { show('queue-view'); openItem(appeal.media_id).catch(fail); } })));
  // An appeal against your own decision is someone else's to decide (the API refuses it too).
  const own = state.me && appeal.original_decider === state.me.sub;
  if (own) {
    for (const control of form.querySelectorAll('select, textarea, button[type="submit"]')) control.disabled = true;
  }
  return el('article', { class: `card appeal${own ? ' own' : ''}`, dataset: { appealId: id, own: String(own) } },
    el('h3', { text: `Appeal of ${appeal.appealed_action} on ${appeal.media_id}` }),
    el('p', { class: 'help', text: `Opened ${when(appeal.created_at)}; decided by ${appeal.original_decider}.` }),
    own ? el('p', { class: 'own-note', text: 'This appeals your own decision: another senior reviewer must decide it.' })
      : null,
    el('blockquote', { text: appeal.statement }),
    form);
}

async function decideAppeal(appealId, outcome, reasonCode, note) {
  const body = { outcome, reason_code: reasonCode };
  if (note) body.note = note;
  const result = await api('POST', `/appeals/${encodeURIComponent(appealId)}/decision`, body);
  say(`Appeal ${appealId}: ${result.outcome} (${result.reason_code}).`, 'ok');
  await loadAppeals();
}

// --- live streams --------------------------------------------------------------------------------------

const REASON_CODE = '^[a-z][a-z0-9_.:\\-]{0,63}$';

async function loadStreams() {
  const wanted = $('stream-state').value;
  const page = await api('GET', `/streams?state=${encodeURIComponent(wanted)}&limit=50`);
  // The choice changed while this list was on its way: the newer request renders.
  if ($('stream-state').value !== wanted) return;
  const container = $('streams');
  if (!page.items.length) {
    container.replaceChildren(el('p', { class: 'help', text: `No ${wanted} streams.` }));
    return;
  }
  container.replaceChildren(...page.items.map(streamCard));
}

function streamCard(stream) {
  const id = stream.stream_id;
  const last = stream.last || {};
  const terminal = ['blocked', 'ended'].includes(stream.state);
  const reason = el('input', { id: `stream-reason-${id}`, required: true, pattern: REASON_CODE, maxlength: 64,
    placeholder: 'e.g. licensed_voice', 'aria-describedby': `stream-reason-help-${id}` });
  const moderate = (decision) => {
    if (!reason.reportValidity()) return;
    moderateStream(id, decision, reason.value).catch(fail);
  };
  const form = terminal ? null : el('form', { class: 'stream-form', onsubmit: (event) => event.preventDefault() },
    el('label', { for: reason.id, text: 'Reason code' }), reason,
    el('p', { id: `stream-reason-help-${id}`, class: 'help', text: 'A short code for the audit trail.' }),
    el('div', { class: 'actions' },
      stream.state === 'restricted'
        ? el('button', { type: 'button', dataset: { decision: 'clear' }, text: 'Clear', onclick: () => moderate('clear') })
        : null,
      state.senior
        ? el('button', { type: 'button', class: 'danger', dataset: { decision: 'block' }, text: 'Block',
          onclick: () => moderate('block') })
        : null));
  const dl = el('dl', { class: 'facts' });
  facts(dl, [
    ['State', stream.state],
    ['Overlays', stream.overlays],
    ['Verified streamer', stream.verified],
    ['Segments analysed', stream.segments],
    ['Restricted by segment', stream.cause_segment],
    ['Newest segment', last.segment !== undefined && last.segment !== null
      ? `#${last.segment} (${number(last.t_start, 1)}-${number(last.t_end, 1)} s): ${last.action}, risk ${number(last.risk)}`
      : null],
  ].filter(([, value]) => value !== undefined && value !== null));
  return el('article', { class: 'card stream', dataset: { streamId: id, state: stream.state } },
    el('h3', {}, el('span', { class: `badge badge-${stream.state}`, text: stream.state }), ` ${id}`),
    dl,
    stream.cause_media_id
      ? el('button', { type: 'button', text: 'Open the restricting segment',
        onclick: () => { show('queue-view'); openItem(stream.cause_media_id).catch(fail); } })
      : null,
    form);
}

async function moderateStream(streamId, decision, reasonCode) {
  const result = await api('POST', `/streams/${encodeURIComponent(streamId)}/moderate`,
    { decision, reason: reasonCode });
  say(`Stream ${streamId}: ${decision} (${reasonCode}); now ${result.state}.`, 'ok');
  await loadStreams();
}

async function openFromHash() {
  const match = /^#item\/([A-Za-z0-9_-]{1,80})$/.exec(location.hash);
  if (!match || !state.token || match[1] === state.current) return;
  show('queue-view');
  await openItem(match[1]);
}

// --- wiring ----------------------------------------------------------------------------------------------

async function boot() {
  const response = await fetch('config.json', { cache: 'no-store' });
  if (!response.ok) throw new Error('config.json is missing: the console does not know where the API is.');
  state.config = await response.json();

  $('signin-form').addEventListener('submit', (event) => {
    event.preventDefault();
    say('Signing in...');
    signIn($('token').value.trim()).catch((error) => { say(error.message, 'error'); });
  });
  $('sign-out').addEventListener('click', () => signOut());
  $('refresh-queue').addEventListener('click', () => loadQueue().then(() => say('Queue refreshed.')).catch(fail));
  $('refresh-appeals').addEventListener('click', () => loadAppeals().catch(fail));
  $('tab-queue').addEventListener('click', () => { show('queue-view'); loadQueue().catch(fail); });
  $('tab-appeals').addEventListener('click', () => { show('appeals-view'); loadAppeals().catch(fail); });
  $('tab-streams').addEventListener('click', () => { show('streams-view'); loadStreams().catch(fail); });
  $('tab-find').addEventListener('click', () => { show('find-view'); find.loadDecided().catch(fail); });
  find.wire(fail);
  banks.wire(fail);
  operators.wire(fail);
  $('tab-banks').addEventListener('click', () => { show('banks-view'); banks.loadBanks().catch(fail); });
  $('tab-ops').addEventListener('click', () => { show('ops-view'); operators.load().catch(fail); });
  // A URL per item: #item/<media id> opens it (claiming it if it is still open).
  window.addEventListener('hashchange', () => openFromHash().catch(fail));
  // A link to the item already open (a Find result, a stream's cause) changes no hash, so
  // no hashchange: it must still bring the item back into view.
  document.addEventListener('click', (event) => {
    const link = event.target instanceof Element && event.target.closest('a[href^="#item/"]');
    if (!link || link.getAttribute('href') !== location.hash) return;
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    const mediaId = decodeURIComponent(link.getAttribute('href').slice('#item/'.length));
    show('queue-view');
    if (!$('item').hidden && $('item').dataset.mediaId === mediaId) $('item-title').focus();
    else openItem(mediaId).catch(fail); // a failed or unfinished open: try again
  });
  $('refresh-streams').addEventListener('click', () => loadStreams().catch(fail));
  $('stream-state').addEventListener('change', () => loadStreams().catch(fail));
  $('media-toggle').addEventListener('click', toggleMedia);
  // Audio has nothing to blur: its first play is the look, recorded like a reveal (and
  // counted for the break reminder). Opening another item resets it (hideMedia).
  $('media-audio').addEventListener('play', () => {
    if (!state.current || $('item').dataset.mediaId !== state.current || $('media').dataset.revealed === 'true') return;
    $('media').dataset.revealed = 'true';
    $('media-state').textContent = 'Played.';
    recordReveal(state.current).catch(fail);
  });
  wellness.wire();
  $('reason').addEventListener('change', updateActions);
  for (const button of document.querySelectorAll('#decide-form [data-action]')) {
    button.addEventListener('click', () => {
      button.disabled = true;
      requestDecision(button.dataset.action).catch((error) => { updateActions(); fail(error); });
    });
  }
  $('undo').addEventListener('click', () => cancelPendingRemove(true));
  // Enter in the reason picker hands the keyboard back to the shortcuts.
  $('reason').addEventListener('keydown', (event) => {
    if (event.key === 'Enter') { event.preventDefault(); $('item-title').focus(); }
  });
  for (const id of ['filter-lane', 'filter-signal', 'filter-age', 'filter-overdue', 'queue-sort']) {
    $(id).addEventListener('change', renderQueue);
  }
  document.addEventListener('keydown', onKey);
  setInterval(tick, 1000);
  setInterval(() => {
    if (state.token && !document.hidden && !$('queue-view').hidden) loadQueue().catch(fail);
  }, POLL_MS);
  $('item-title').tabIndex = -1;
  updateActions();
  // Everything is wired: a sign-in submitted before this would have been a native form
  // submission (a reload), so tests and scripts wait for this mark.
  document.body.dataset.ready = 'true';

  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    await signIn(saved).catch(() => signOut('Sign in again.'));
  }
}

document.addEventListener('DOMContentLoaded', () => { boot().catch((error) => say(error.message, 'error')); });
