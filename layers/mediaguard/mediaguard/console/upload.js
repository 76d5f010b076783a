// Upload page: the JS client (client/index.js, @mediaguard/client) strips metadata and
// hashes each picture on this device, asks the upload API for a presigned POST declaring
// the PDQ, posts the file with progress and follows the decision. One card per file shows
// the client-side hash, what was stripped, the progress and the outcome.
import { upload } from './client/index.js';

const $ = (id) => document.getElementById(id);
let config = null;

function say(text, kind = 'info') {
  $('status').textContent = text;
  $('status').dataset.kind = kind;
}

function facts(list, pairs) {
  list.replaceChildren();
  for (const [term, value] of pairs) {
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.textContent = value;
    list.append(dt, dd);
  }
}

function card(file) {
  const section = document.createElement('article');
  section.className = 'upload-card';
  section.dataset.file = file.name;
  const title = document.createElement('h3');
  title.textContent = file.name;
  const bar = document.createElement('progress');
  bar.max = 1; bar.value = 0;
  bar.setAttribute('aria-label', `Upload progress of ${file.name}`);
  const list = document.createElement('dl');
  list.className = 'facts';
  section.append(title, bar, list);
  $('uploads').append(section);
  return { section, bar, list };
}

function outcome(result) {
  if (result.refused) {
    return result.reason === 'blocked_by_bank'
      ? 'Refused before upload: this image cannot be uploaded here.'
      : `Refused before upload (${result.reason}).`;
  }
  if (result.status === 'done') return `Decided: ${result.action}`;
  if (result.status === 'rejected') return `Rejected by the pipeline (${result.reason})`;
  return `Status: ${result.status}`;
}

async function uploadOne(file, token, reach) {
  const view = card(file);
  const shown = { hash: '(computing)', quality: '', phash: '', stripped: '', status: 'preparing' };
  const render = () => facts(view.list, [
    ['Client PDQ', shown.hash], ['PDQ quality', String(shown.quality)], ['pHash', shown.phash],
    ['Stripped', shown.stripped], ['Status', shown.status],
  ]);
  render();
  const result = await upload(file, {
    api: config.uploads_api_base, token, reach, follow: true, pollMs: 1000, timeoutMs: 120_000,
    onProgress: (event) => {
      if (event.phase === 'strip') {
        shown.stripped = event.stripped ? (event.removed.join(', ') || 'nothing to strip') : 'not stripped on this device (the server strips it)';
      } else if (event.phase === 'hash') {
        Object.assign(shown, { hash: event.pdq, quality: event.pdq_quality, phash: event.phash });
      } else if (event.phase === 'upload') {
        view.bar.value = event.loaded / event.total;
        shown.status = `uploading ${Math.round((100 * event.loaded) / event.total)} %`;
      } else if (event.phase === 'status') {
        shown.status = `processing (${event.status})`;
      } else if (event.phase === 'retry') {
        shown.status = `network error, retry ${event.attempt}`;
      }
      render();
    },
  });
  if (shown.hash === '(computing)') shown.hash = 'not computed (the browser could not decode it)';
  shown.status = outcome(result);
  view.section.dataset.outcome = result.refused ? 'refused' : result.status;
  if (result.media_id && !result.refused) {
    view.section.dataset.mediaId = result.media_id;
    $('appeal-media').value = result.media_id;
  }
  render();
  return result;
}

async function onSubmit(event) {
  event.preventDefault();
  const token = $('upload-token').value.trim();
  const reach = $('reach').value === '' ? undefined : Number($('reach').value);
  const files = Array.from($('file').files);
  say(`Uploading ${files.length} file(s)...`);
  let refused = 0;
  for (const file of files) {
    try {
      const result = await uploadOne(file, token, reach);
      if (result.refused) refused += 1;
    } catch (error) {
      say(`${file.name}: ${error.message}`, 'error');
      return;
    }
  }
  say(refused ? `${refused} of ${files.length} refused before upload.` : 'All uploads are through; outcomes are listed below.',
    refused ? 'error' : 'ok');
}

async function appeal(event) {
  event.preventDefault();
  const mediaId = $('appeal-media').value.trim();
  // Appeals belong to the review API, which knows the uploader by the same identity.
  const response = await fetch(`${config.api_base}/items/${encodeURIComponent(mediaId)}/appeal`, {
    method: 'POST', cache: 'no-store',
    headers: { Authorization: `Bearer ${$('upload-token').value.trim()}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ statement: $('appeal-statement').value.trim() }),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message ? `${data.message} (${data.reason || response.status})` : `HTTP ${response.status}`);
  say(`Appeal ${data.appeal_id} is open.`, 'ok');
  const row = document.querySelector(`#mine tr[data-media-id="${CSS.escape(mediaId)}"] td:last-child`);
  if (row) row.textContent = `appealed (${data.appeal_id})`;
}

// What an uploader may appeal (decisions/review/reasons.py APPEALABLE_ACTIONS).
const APPEALABLE = new Set(['label', 'blur', 'limit', 'remove']);

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

// "My uploads": GET /v1/uploads (the caller's uploads of the last week, newest first).
async function loadMine() {
  const response = await fetch(`${config.uploads_api_base}/v1/uploads?limit=20`, {
    cache: 'no-store', headers: { Authorization: `Bearer ${$('upload-token').value.trim()}` },
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message ? `${data.message} (${data.reason || response.status})` : `HTTP ${response.status}`);
  const rows = data.items.map((u) => {
    const tr = document.createElement('tr');
    tr.dataset.mediaId = u.media_id;
    const appealCell = document.createElement('td');
    if (u.final && APPEALABLE.has(u.action)) {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = 'Appeal';
      button.setAttribute('aria-label', `Appeal the decision on ${u.media_id}`);
      button.addEventListener('click', () => {
        $('appeal-media').value = u.media_id;
        $('appeal-statement').focus();
        say(`Say why the decision on ${u.media_id} is wrong, then send the appeal.`);
      });
      appealCell.append(button);
    } else {
      appealCell.textContent = '-';
    }
    tr.append(cell(new Date(u.uploaded_at).toLocaleString()), cell(u.media_id), cell(u.final ? u.status : `${u.status} (processing)`),
      cell(u.status === 'rejected' ? `rejected (${u.reason})` : (u.action || '-')), appealCell);
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement('tr');
    const td = cell('No uploads in the last week.');
    td.colSpan = 5;
    tr.append(td);
    rows.push(tr);
  }
  $('mine').tBodies[0].replaceChildren(...rows);
  say(`${data.items.length} upload(s) in the last week.`);
}

async function start() {
  try {
    const response = await fetch('config.json', { cache: 'no-store' });
    config = await response.json();
  } catch (error) {
    say('config.json is missing: the page does not know where the API is.', 'error');
    return;
  }
  $('upload-form').addEventListener('submit', (event) => onSubmit(event).catch((error) => say(error.message, 'error')));
  $('appeal-form').addEventListener('submit', (event) => appeal(event).catch((error) => say(error.message, 'error')));
  $('mine-refresh').addEventListener('click', () => loadMine().catch((error) => say(error.message, 'error')));
  document.body.dataset.ready = 'true';
}

// Modules run after parsing, so the DOM is there; DOMContentLoaded may already have fired.
start();
