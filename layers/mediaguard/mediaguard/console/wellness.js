// Reviewer wellness, per reviewer (stored in this browser's localStorage under the
// reviewer's subject; nothing about it is sent to the API): how strongly media is blurred
// before a reveal, whether some blur and the greyscale stay on after it, an automatic
// re-blur after N seconds, and a break reminder every N reveals of the day. The day's
// count itself is the server's (GET /review/me, POST /items/{id}/reveal), so it follows
// the reviewer across browsers.

import { $ } from './lib.js';

const KEY = 'mediaguard.wellness.';
export const DEFAULTS = Object.freeze({
  blur: 28, // px before a reveal: nothing explicit is recognisable at a glance
  revealBlur: 0, // px kept after a reveal
  revealGrey: false, // keep greyscale after a reveal
  reblurSeconds: 20, // 0: never re-blur by itself
  breakEvery: 25, // reveals between break reminders; 0: no reminder
});
const LIMITS = { blur: [8, 40], revealBlur: [0, 12], reblurSeconds: [0, 600], breakEvery: [0, 500] };

let owner = null;
let settings = { ...DEFAULTS };
let reblurTimer = null;

function clamp(name, value) {
  const [lo, hi] = LIMITS[name];
  const n = Number(value);
  return Number.isFinite(n) ? Math.min(hi, Math.max(lo, Math.round(n))) : DEFAULTS[name];
}

/** Load the reviewer's settings (or the defaults) and apply them to the page. */
export function loadSettings(sub) {
  owner = sub;
  let saved = {};
  try { saved = JSON.parse(localStorage.getItem(KEY + sub) || '{}') || {}; } catch (_) { saved = {}; }
  settings = { ...DEFAULTS };
  for (const name of Object.keys(LIMITS)) if (name in saved) settings[name] = clamp(name, saved[name]);
  settings.revealGrey = Boolean(saved.revealGrey);
  apply();
  fillForm();
}

export function current() {
  return { ...settings };
}

function save() {
  if (owner) localStorage.setItem(KEY + owner, JSON.stringify(settings));
}

function apply() {
  // CSS custom properties through the CSSOM: the CSP allows no inline style attribute.
  const root = document.documentElement.style;
  root.setProperty('--media-blur', `${settings.blur}px`);
  root.setProperty('--reveal-blur', `${settings.revealBlur}px`);
  root.setProperty('--reveal-grey', settings.revealGrey ? '100%' : '0%');
}

function fillForm() {
  $('w-blur').value = String(settings.blur);
  $('w-reveal-blur').value = String(settings.revealBlur);
  $('w-reveal-grey').checked = settings.revealGrey;
  $('w-reblur').value = String(settings.reblurSeconds);
  $('w-break').value = String(settings.breakEvery);
  $('w-blur-out').textContent = `${settings.blur} px`;
  $('w-reveal-blur-out').textContent = `${settings.revealBlur} px`;
}

function readForm() {
  settings = {
    blur: clamp('blur', $('w-blur').value),
    revealBlur: clamp('revealBlur', $('w-reveal-blur').value),
    revealGrey: $('w-reveal-grey').checked,
    reblurSeconds: clamp('reblurSeconds', $('w-reblur').value),
    breakEvery: clamp('breakEvery', $('w-break').value),
  };
  apply();
  fillForm();
  save();
}

/** Wire the settings form and the break reminder's button. */
export function wire() {
  for (const id of ['w-blur', 'w-reveal-blur', 'w-reveal-grey', 'w-reblur', 'w-break']) {
    $(id).addEventListener('change', readForm);
    $(id).addEventListener('input', readForm);
  }
  $('break-dismiss').addEventListener('click', () => { $('break-reminder').hidden = true; });
}

/** The media was revealed: start the re-blur countdown (``hide`` blurs it again). */
export function revealed(hide) {
  clearTimeout(reblurTimer);
  if (settings.reblurSeconds > 0) reblurTimer = setTimeout(hide, settings.reblurSeconds * 1000);
}

export function hidden() {
  clearTimeout(reblurTimer);
  reblurTimer = null;
}

/** After a reveal the server counted: remind of a break at every ``breakEvery`` reveals. */
export function counted(exposuresToday) {
  const every = settings.breakEvery;
  if (!every || exposuresToday <= 0 || exposuresToday % every !== 0) return;
  $('break-text').textContent = `You have revealed ${exposuresToday} items today. `
    + 'Step away from the screen for a few minutes before the next one.';
  $('break-reminder').hidden = false;
}

export function signOut() {
  hidden();
  owner = null;
  settings = { ...DEFAULTS };
  apply();
  $('break-reminder').hidden = true;
}
