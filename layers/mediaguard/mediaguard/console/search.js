// Finding past work: search by media id, hash, uploader, action and day; the day's
// decisions; decided appeals. Every result links to the item's own URL (#item/<id>).

import { $, api, el, risk, say, seconds, state } from './lib.js';

function itemLink(mediaId) {
  return el('a', { href: `#item/${encodeURIComponent(mediaId)}`, text: mediaId });
}

function resultRows(items) {
  return items.map((hit) => el('tr', { dataset: { mediaId: hit.media_id } },
    el('td', {}, itemLink(hit.media_id)),
    el('td', { text: hit.action || hit.status || '-' }),
    el('td', { text: risk(hit.risk) }),
    el('td', { text: hit.received_at ? seconds(hit.received_at) : '-' }),
    el('td', { text: hit.decision_action ? `${hit.decision_action} (${hit.decision_reason}) by ${hit.decided_by}, `
      + `${seconds(hit.decided_at)}` : (hit.task_state || '-') })));
}

function show(table, page, none) {
  const body = table.tBodies[0];
  body.replaceChildren(...resultRows(page.items));
  if (!page.items.length) body.append(el('tr', {}, el('td', { colspan: 5, text: none })));
}

export async function search(event) {
  if (event) event.preventDefault();
  const params = new URLSearchParams();
  const value = (id) => $(id).value.trim();
  if (value('q-media')) params.set('media_id', value('q-media'));
  if (value('q-hash')) params.set('sha256', value('q-hash').toLowerCase());
  if (value('q-uploader')) params.set('uploader', value('q-uploader'));
  if (value('q-action')) params.set('action', value('q-action'));
  if (value('q-day')) {
    const day = new Date(`${value('q-day')}T00:00:00Z`);
    params.set('since', day.toISOString());
    params.set('until', new Date(day.getTime() + 86400000).toISOString());
  }
  const page = await api('GET', `/review/search?${params}`);
  show($('search-results'), page, 'Nothing found.');
  const how = page.method === 'scan'
    ? `Searched ${page.scanned} items${page.truncated ? ' (stopped there: narrow the search)' : ''}.`
    : 'Found by id.';
  $('search-note').textContent = `${page.items.length} found. ${how}`;
}

export async function loadDecided() {
  const day = $('decided-day').value || new Date().toISOString().slice(0, 10);
  $('decided-day').value = day;
  const page = await api('GET', `/review/decided?day=${day}`);
  show($('decided-list'), page, 'No decisions that day.');
  if (state.senior) {
    const appeals = await api('GET', '/appeals?state=decided&limit=50');
    $('decided-appeals').replaceChildren(...appeals.items.map((a) => el('li', {},
      itemLink(a.media_id), ` ${a.outcome} (${a.reason_code}) by ${a.handled_by}, ${seconds(a.handled_at)}`)));
    if (!appeals.items.length) $('decided-appeals').append(el('li', { class: 'help', text: 'None.' }));
  }
  $('decided-appeals-section').hidden = !state.senior;
}

export function wire(fail) {
  $('search-form').addEventListener('submit', (event) => { search(event).catch(fail); });
  $('decided-day').addEventListener('change', () => loadDecided().catch(fail));
  say('');
}
