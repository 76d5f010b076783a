// Banks (admins): list and create banks, see a bank's entries, add images (hashed here,
// in the browser: no media leaves this machine, as in hash exchange), import a PDQ CSV,
// confirm and withdraw entries; "add to bank" from an item; a match's entry beside the upload.

import { $, api, el, facts, say, seconds, state } from './lib.js';

let selected = null; // the bank whose entries are shown

const path = (bank, rest = '') => `/admin/banks/${encodeURIComponent(bank)}${rest}`;

export async function loadBanks() {
  const page = await api('GET', '/admin/banks');
  const body = $('banks-list').tBodies[0];
  body.replaceChildren(...page.items.map((b) => el('tr', { dataset: { bank: b.name } },
    el('th', { scope: 'row' }, el('button', { type: 'button', class: 'link', text: b.name,
      onclick: () => openBank(b.name).catch(fail) })),
    el('td', { text: b.kind }), el('td', { text: b.action || '-' }), el('td', { text: String(b.pdq_threshold) }),
    el('td', { text: b.created_by || '-' }))));
  if (!page.items.length) body.append(el('tr', {}, el('td', { colspan: 5, text: 'No banks yet.' })));
  fillBankPicker(page.items);
  if (selected) await openBank(selected);
}

function fillBankPicker(banks) {
  const picker = $('add-to-bank-name');
  picker.replaceChildren(el('option', { value: '', text: 'Choose a bank...' }),
    ...banks.map((b) => el('option', { value: b.name, text: `${b.name} (${b.kind})` })));
}

export async function openBank(name) {
  selected = name;
  const page = await api('GET', `${path(name)}/entries?limit=200`);
  $('bank-entries-section').hidden = false;
  $('bank-entries-title').textContent = `Entries of ${name}`;
  const atLeast = page.counted_all ? '' : 'at least ';
  $('bank-counts').textContent = `${atLeast}${page.counts.active} active, ${page.counts.withdrawn} withdrawn`
    + (page.truncated ? ` (first ${page.items.length} shown)` : '');
  const body = $('bank-entries').tBodies[0];
  body.replaceChildren(...page.items.map((e) => el('tr', { dataset: { ref: e.ref, status: e.status } },
    el('th', { scope: 'row', text: e.ref }), el('td', { text: e.status }),
    el('td', { text: e.source || '-' }),
    el('td', { text: e.confirmed_by ? `${e.confirmed_by}, ${seconds(e.confirmed_at)}` : 'not confirmed' }),
    el('td', {}, e.status === 'active' ? [
      el('button', { type: 'button', text: 'Confirm', onclick: () => act('confirm', e.ref) }),
      el('button', { type: 'button', class: 'danger', text: 'Withdraw', onclick: () => act('withdraw', e.ref) }),
    ] : `withdrawn by ${e.withdrawn_by}, ${seconds(e.withdrawn_at)}`))));
  if (!page.items.length) body.append(el('tr', {}, el('td', { colspan: 5, text: 'No entries.' })));
}

async function act(what, ref) {
  try {
    const done = await api('POST', path(selected, `/${what}`), { ref });
    say(`${what === 'confirm' ? 'Confirmed' : 'Withdrew'} ${selected}:${ref} (${done.items.length} entries).`, 'ok');
    await openBank(selected);
  } catch (error) { fail(error); }
}

async function createBank(event) {
  event.preventDefault();
  const body = { name: $('bank-name').value.trim(), kind: $('bank-kind').value };
  if ($('bank-action').value) body.action = $('bank-action').value;
  const bank = await api('POST', '/admin/banks', body);
  say(`Created bank ${bank.name} (${bank.kind}).`, 'ok');
  $('bank-create').reset();
  selected = bank.name;
  await loadBanks();
}

async function digest(bytes) {
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(hash.slice(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
}

// Each picture's PDQ is computed here exactly as the upload API's screening computes it
// (clients/js), and only the hash is sent. The ref is a digest of the file, never its name
// (a file name may name a person).
async function addImages() {
  if (!selected) throw new Error('Choose a bank first.');
  const files = Array.from($('bank-files').files);
  if (!files.length) throw new Error('Choose one or more images.');
  // Loaded when an admin first hashes something: reviewers never download the hashing code.
  const { decodeInBrowser, fingerprint } = await import('./client/index.js');
  const entries = [];
  for (const file of files) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const image = await decodeInBrowser(bytes, file.type);
    const fp = fingerprint(image.rgba, image.width, image.height, file.type);
    entries.push({ ref: `img-${await digest(bytes)}`, pdq: fp.pdq, quality: fp.pdq_quality });
  }
  const report = await api('POST', path(selected, '/entries'), { entries, source: 'console' });
  say(`Added to ${selected}: ${report.added} new, ${report.updated} updated, ${report.unchanged} unchanged.`, 'ok');
  $('bank-files').value = '';
  await openBank(selected);
}

async function importCsv() {
  if (!selected) throw new Error('Choose a bank first.');
  const file = $('bank-csv').files[0];
  if (!file) throw new Error('Choose a CSV file.');
  const name = file.name.replace(/[^A-Za-z0-9_. -]/g, '_').slice(0, 80);
  const report = await api('POST', path(selected, '/csv'), { csv: await file.text(), name });
  say(`Imported into ${selected}: ${report.added} added, ${report.withdrawn} withdrawn, `
    + `${report.skipped_rows} rows skipped.`, 'ok');
  $('bank-csv').value = '';
  await openBank(selected);
}

// "Add to bank" from an item: the item's own stored fingerprints, recorded as its source.
async function addItem() {
  const bank = $('add-to-bank-name').value;
  if (!bank || !state.current) throw new Error('Choose a bank.');
  const report = await api('POST', path(bank, `/items/${encodeURIComponent(state.current)}`));
  say(`Banked ${state.current} in ${bank}: ${report.added} added, ${report.unchanged} unchanged.`, 'ok');
}

// A match's entry beside the upload: the facts the bank keeps, and the banked item's own
// sanitized copy when this platform holds it, blurred and greyscale until revealed.
export function renderSideBySide(view) {
  const box = $('match-side');
  const shown = (view.matches || []).filter((m) => m.entry);
  box.replaceChildren(...shown.map((m) => {
    const card = el('article', { class: 'card match-card', dataset: { bank: m.bank, ref: m.ref } });
    const list = el('dl', { class: 'facts' });
    facts(list, [
      ['Bank', `${m.bank} (${m.kind})`], ['Entry', m.ref], ['Signal', m.signal], ['Distance', m.distance],
      ['Status', m.entry.status], ['Added', `${m.entry.added_by || '-'}, ${seconds(m.entry.added_at)}`],
      ['Confirmed', m.entry.confirmed_by ? `${m.entry.confirmed_by}, ${seconds(m.entry.confirmed_at)}` : 'not confirmed'],
      ['From', m.entry.source_media_id ? `item ${m.entry.source_media_id}` : (m.entry.source || '-')],
    ]);
    card.append(el('h4', { text: `Banked: ${m.bank}/${m.ref}` }), list);
    if (m.entry.source_media) card.append(bankedMedia(m.entry));
    else card.append(el('p', { class: 'help', text: 'Banks keep hashes, not media: nothing to show beside the upload.' }));
    return card;
  }));
  $('match-side-section').hidden = !shown.length;
}

// The banked copy with the element its kind needs: a still (or animation) in the reveal
// frame; a video's poster there and the video below it, both blurred until revealed;
// audio as a player (nothing to blur; pressing play is the look that is recorded).
function bankedMedia(entry) {
  const mediaId = entry.source_media_id;
  const url = entry.source_media.url;
  const kind = entry.source_media_type || 'image';
  const figure = el('figure', { class: 'media banked', dataset: { revealed: 'false', kind } });
  const recordLook = () => api('POST', `/items/${encodeURIComponent(mediaId)}/reveal`).catch(fail);
  if (kind === 'audio') {
    const player = el('audio', { controls: '', preload: 'none', src: url, 'aria-label': 'The banked item\'s sanitized audio' });
    player.addEventListener('play', () => {
      if (figure.dataset.revealed === 'true') return;
      figure.dataset.revealed = 'true';
      recordLook();
    });
    figure.append(player, el('figcaption', { class: 'help', text: `Banked from item ${mediaId}.` }));
    return figure;
  }
  const poster = kind === 'video' ? entry.source_poster && entry.source_poster.url : url;
  const still = poster
    ? el('img', { alt: `The banked item's sanitized ${kind === 'video' ? 'video (poster frame)' : 'media'}`, src: poster })
    : el('span', { class: 'help', text: 'No poster frame.' });
  const button = el('button', { type: 'button', class: 'media-frame', 'aria-pressed': 'false' }, still,
    el('span', { class: 'media-cue', 'aria-hidden': 'true', text: 'Click to reveal' }));
  button.addEventListener('click', () => {
    const reveal = figure.dataset.revealed !== 'true';
    figure.dataset.revealed = String(reveal);
    button.setAttribute('aria-pressed', String(reveal));
    // Looking at the banked copy is a reveal of that item: recorded on its chain.
    if (reveal) recordLook();
  });
  figure.append(button);
  if (kind === 'video') {
    figure.append(el('video', { class: 'media-play', controls: '', preload: 'none', src: url,
      'aria-label': 'The banked item\'s sanitized video' }));
  }
  figure.append(el('figcaption', { class: 'help', text: `Banked from item ${mediaId}. Blurred until you choose to look.` }));
  return figure;
}

let fail = (error) => say(error.message || String(error), 'error');

export function wire(onError) {
  fail = onError;
  $('bank-create').addEventListener('submit', (event) => { createBank(event).catch(fail); });
  $('bank-add-files').addEventListener('click', () => { addImages().catch(fail); });
  $('bank-import-csv').addEventListener('click', () => { importCsv().catch(fail); });
  $('add-to-bank').addEventListener('click', () => { addItem().catch(fail); });
  $('refresh-banks').addEventListener('click', () => { loadBanks().catch(fail); });
}
