// Shared by the console's modules: the session state, DOM and API helpers, formatting.
// Every value from the API is inserted as text (textContent), never as HTML.

export const $ = (id) => document.getElementById(id);

export const state = {
  config: null,
  token: null,
  reasons: null,
  senior: false,
  me: null, // GET /review/me: sub, name, role, senior, admin, exposures_today
  current: null, // media id of the open item
  tasks: [], // the last queue listing, every lane
  bulk: [], // other queued matches of the open item's banked entries
  pendingRemove: null, // a removal waiting out its undo window
  claimed: false, // whether the open item's task is claimed by this reviewer
  opening: 0, // counts item opens: an answer for an earlier open is not rendered
};

// --- helpers ---------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.message ? `${body.message} (${body.reason || status})` : `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.body = body;
  }
}

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    // CSSOM, not a style attribute: the page's CSP allows no inline styles.
    else if (key === 'vars') for (const [name, v] of Object.entries(value)) node.style.setProperty(name, String(v));
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function say(text, kind = 'info') {
  const status = $('status');
  status.textContent = text;
  status.dataset.kind = kind;
}

export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}`, Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store', referrerPolicy: 'no-referrer' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(state.config.api_base + path, init);
  } catch (_) {
    throw new Error(`Cannot reach the API at ${state.config.api_base}.`);
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try { data = JSON.parse(text); } catch (_) { data = null; }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function number(value, digits = 2) {
  return typeof value === 'number' ? value.toFixed(digits) : '-';
}

// Risk is cut, never rounded up: 0.8998 shows 0.899, so a normal-lane item (< 0.9)
// never reads as if it met the fast lane's 0.90.
export function risk(value, digits = 3) {
  if (typeof value !== 'number') return '-';
  const scale = 10 ** digits;
  return (Math.floor(value * scale + 1e-9) / scale).toFixed(digits);
}

export function when(iso) {
  if (!iso) return '-';
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

// To the second: the audit trail is evidence.
export function seconds(iso) {
  if (!iso) return '-';
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

export function formatValue(value) {
  if (value === null || value === undefined) return '-';
  if (Array.isArray(value)) return value.length ? value.map(formatValue).join('; ') : 'none';
  if (typeof value === 'object') {
    return Object.entries(value).map(([k, v]) => `${k}: ${formatValue(v)}`).join(', ');
  }
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return String(value);
}

export function facts(list, pairs) {
  list.replaceChildren();
  for (const [term, value] of pairs) {
    list.append(el('dt', { text: term }), el('dd', { text: formatValue(value) }));
  }
}
