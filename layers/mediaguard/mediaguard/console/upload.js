// Upload page: ask the upload API for a presigned POST, then post the file with exactly
// the fields it returned (file last, as S3 requires). Nothing about the file but its
// declared type and length goes to the API; the bytes go only to the storage endpoint.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  let config = null;

  function say(text, kind = 'info') {
    $('status').textContent = text;
    $('status').dataset.kind = kind;
  }

  function show(pairs) {
    const list = $('result');
    list.replaceChildren();
    for (const [term, value] of pairs) {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = value;
      list.append(dt, dd);
    }
  }

  async function call(base, path, token, body) {
    const response = await fetch(base + path, {
      method: 'POST',
      cache: 'no-store',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.message ? `${data.message} (${data.reason || response.status})` : `HTTP ${response.status}`);
    return data;
  }

  async function upload(event) {
    event.preventDefault();
    const file = $('file').files[0];
    const token = $('upload-token').value.trim();
    if (!file) return;
    const request = { content_type: file.type || 'application/octet-stream', content_length: file.size };
    if ($('reach').value !== '') request.reach = Number($('reach').value);
    say('Requesting an upload form...');
    const grant = await call(config.uploads_api_base, '/v1/uploads', token, request);
    const form = new FormData();
    for (const [name, value] of Object.entries(grant.upload.fields)) form.append(name, value);
    form.append('file', file); // last: S3 ignores fields after the file
    say('Uploading...');
    const stored = await fetch(grant.upload.url, { method: 'POST', body: form, cache: 'no-store' });
    if (!stored.ok) {
      const text = await stored.text();
      const code = (text.match(/<Code>([^<]+)<\/Code>/) || [])[1] || `HTTP ${stored.status}`;
      throw new Error(`Storage refused the upload: ${code}`);
    }
    show([['Media id', grant.media_id], ['Bytes', String(file.size)], ['Type', request.content_type]]);
    $('appeal-media').value = grant.media_id;
    say('Uploaded. The pipeline is processing it; if the policy sends it to review it appears in the queue.', 'ok');
  }

  async function appeal(event) {
    event.preventDefault();
    const mediaId = $('appeal-media').value.trim();
    // Appeals belong to the review API, which knows the uploader by the same identity.
    const receipt = await call(config.api_base, `/items/${encodeURIComponent(mediaId)}/appeal`,
      $('upload-token').value.trim(), { statement: $('appeal-statement').value.trim() });
    say(`Appeal ${receipt.appeal_id} is open.`, 'ok');
  }

  document.addEventListener('DOMContentLoaded', async () => {
    try {
      const response = await fetch('config.json', { cache: 'no-store' });
      config = await response.json();
    } catch (error) {
      say('config.json is missing: the page does not know where the API is.', 'error');
      return;
    }
    $('upload-form').addEventListener('submit', (event) => upload(event).catch((error) => say(error.message, 'error')));
    $('appeal-form').addEventListener('submit', (event) => appeal(event).catch((error) => say(error.message, 'error')));
  });
})();
