// A video's frames strip, with the frame behind each signal marked; and, for a live
// segment's item, its stream's current state and the segment that caused it.
//
// The strip is drawn here from the sanitized video the item view already links: seek to
// each analysed frame's time (frames.t) and copy it to a canvas. Nothing new is stored
// (no thumbnail per frame, no write in the pipeline) and nothing new is signed; the cost
// is a few range requests on a video the reviewer is about to play anyway. The canvases
// are blurred and greyscale until the media is revealed (style.css, .media[data-revealed]).

import { $, api, el, number } from './lib.js';

let drawing = 0; // a newer item's strip cancels an older one still seeking

// Which signals each frame drove: the score keys whose maximum it gave, and bank matches.
export function marks(view) {
  const out = new Map();
  const add = (frame, label) => {
    if (!Number.isInteger(frame)) return;
    if (!out.has(frame)) out.set(frame, []);
    out.get(frame).push(label);
  };
  const counted = new Set((view.signals || []).filter((s) => s.contribution > 0).map((s) => s.name));
  for (const [name, frame] of Object.entries(view.signal_frames || {})) {
    // Only scores that became a signal with a contribution: the strip explains the risk.
    // (signals are named by source: classifier.<score key>)
    if ([...counted].some((s) => s === name || s.endsWith(`.${name}`))) add(frame, name);
  }
  for (const m of view.matches || []) add(m.frame, `${m.signal} match ${m.bank}/${m.ref}`);
  return out;
}

export function render(view, fail) {
  const section = $('frames-section');
  const strip = $('frames-strip');
  drawing += 1;
  const times = (view.frames && view.frames.t) || [];
  const url = view.media && view.media.url;
  strip.replaceChildren();
  section.hidden = !(url && view.media_type === 'video' && times.length > 1);
  renderStream(view, fail, drawing);
  if (section.hidden) return;
  const marked = marks(view);
  const cells = times.map((t, n) => {
    const drove = marked.get(n);
    const canvas = el('canvas', { width: 160, height: 90, 'aria-label': `frame ${n} at ${number(t, 2)} s` });
    const figure = el('figure', { dataset: { frame: n, ...(drove ? { drove: drove.join(', ') } : {}) } }, canvas,
      el('figcaption', { text: `${number(t, 1)} s` }),
      drove ? el('span', { class: 'drove', text: drove.join(', ') }) : null);
    strip.append(figure);
    return { t, canvas };
  });
  draw(url, cells, drawing).catch(fail);
}

async function draw(url, cells, run) {
  const video = document.createElement('video');
  video.muted = true;
  video.preload = 'auto';
  video.src = url;
  await once(video, 'loadeddata');
  for (const { t, canvas } of cells) {
    if (run !== drawing) return;
    video.currentTime = Math.min(t, Math.max(0, (video.duration || t) - 0.01));
    await once(video, 'seeked');
    const ratio = video.videoWidth && video.videoHeight ? video.videoHeight / video.videoWidth : 0.5625;
    canvas.height = Math.round(canvas.width * ratio);
    canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
    canvas.dataset.drawn = 'true';
  }
  video.removeAttribute('src');
  video.load();
}

function once(target, name) {
  return new Promise((resolve, reject) => {
    const done = () => { target.removeEventListener('error', failed); resolve(); };
    const failed = () => { target.removeEventListener(name, done); reject(new Error('The video could not be read for the frames strip.')); };
    target.addEventListener(name, done, { once: true });
    target.addEventListener('error', failed, { once: true });
  });
}

// A live segment's item: where its stream stands now, and which segment restricted it.
// ``run``: the open this answer belongs to; an answer for an item already left is dropped.
async function renderStream(view, fail, run) {
  const box = $('stream-facts');
  box.hidden = !view.stream_id;
  if (!view.stream_id) return;
  box.replaceChildren(el('p', { class: 'help', text: `Live stream ${view.stream_id}: loading...` }));
  try {
    const stream = await api('GET', `/streams/${encodeURIComponent(view.stream_id)}`);
    if (run !== drawing) return;
    const caused = stream.cause_media_id === view.media_id;
    box.replaceChildren(
      el('p', { dataset: { state: stream.state } }, el('strong', { text: `Live stream ${stream.stream_id}: ${stream.state}` }),
        stream.overlays.length ? ` (overlays: ${stream.overlays.join(', ')})` : ''),
      el('p', { class: 'help' }, stream.cause_segment == null ? 'No segment restricted it.'
        : caused ? `This segment (#${stream.cause_segment}) restricted it.`
          : el('span', {}, `Restricted by segment #${stream.cause_segment}: `,
            el('a', { href: `#item/${encodeURIComponent(stream.cause_media_id)}`, text: stream.cause_media_id }))));
  } catch (error) {
    if (run !== drawing) return;
    box.replaceChildren();
    box.hidden = true;
    fail(error);
  }
}
