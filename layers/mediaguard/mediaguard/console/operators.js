// The operators' page (admins): the transparency report (GET /admin/report, the JSON of
// `mediaguard report --json`) drawn as inline SVG bar charts, and the metrics the stack
// emits. SVG is built with DOM calls and styled from style.css: the CSP allows no inline
// script or style (presentation attributes such as width are not styles).

import { $, api, el, say } from './lib.js';

const SVG = 'http://www.w3.org/2000/svg';

// The EMF metrics of the Operations section of the README (mediaguard/observability.py's
// callers). Their values live in CloudWatch (namespace below), which the console does not read.
const METRICS = [
  ['StageDuration', 'ms', 'stage', 'time of each function invocation'],
  ['Uploads', 'count', 'media_type', 'uploads sanitized'],
  ['Decisions', 'count', 'action', 'actions put in force by enforcement'],
  ['Rejections', 'count', 'reason', 'uploads refused (the failure stage)'],
  ['Failures', 'count', 'reason', 'runs that failed (the failure stage)'],
  ['BankMatches', 'count', 'bank_kind, signal', 'bank matches, one per match'],
  ['IndexAge', 's', '-', 'age of the index build the matcher uses'],
  ['IndexBuilds', 'count', '-', 'index builds published'],
  ['ReviewQueueDepth', 'count', 'lane', 'open review tasks'],
  ['ReviewQueueOldestAge', 's', 'lane', 'oldest open task'],
  ['SlaBreaches', 'count', '-', 'tasks escalated past their deadline'],
  ['ReviewDecisions', 'count', 'action, lane', 'reviewer decisions'],
  ['AppealsOpened', 'count', 'action', 'appeals opened'],
  ['AppealsDecided', 'count', 'outcome, action', 'appeals decided'],
  ['QaSampled', 'count', 'action', 'automated decisions sampled for blind review'],
  ['QaDecisions', 'count', 'action, agree', 'blind reviews of samples'],
  ['WebhookFailures', 'count', 'status', 'webhook deliveries given up'],
  ['StuckUploads', 'count', 'service', 'uploads the sweep found stuck'],
  ['RedrivenUploads', 'count', 'service', 'stuck uploads started again'],
  ['RedriveFailures', 'count', 'service', 're-drives that failed'],
];

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) node.append(child);
  return node;
}

// One horizontal bar per entry, scaled to the largest; the numbers are text, so the chart
// reads without colour and a screen reader gets the same rows from the table beside it.
export function barChart(title, entries, unit = '') {
  const rows = entries.filter(([, v]) => typeof v === 'number');
  const figure = el('figure', { class: 'chart card', dataset: { chart: title } });
  figure.append(el('figcaption', { text: title }));
  if (!rows.length) {
    figure.append(el('p', { class: 'help', text: 'Nothing in this period.' }));
    return figure;
  }
  const max = Math.max(...rows.map(([, v]) => v), 1e-9);
  const bar = 18;
  const gap = 6;
  const label = 120;
  const width = 360;
  const height = rows.length * (bar + gap);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title, class: 'bars' });
  rows.forEach(([name, value], i) => {
    const y = i * (bar + gap);
    const w = Math.max(1, ((width - label - 60) * value) / max);
    chart.append(
      svg('text', { x: 0, y: y + bar - 5, class: 'bar-label' }, document.createTextNode(String(name))),
      svg('rect', { x: label, y, width: w.toFixed(1), height: bar, class: 'bar-fill', 'data-value': value }),
      svg('text', { x: label + w + 4, y: y + bar - 5, class: 'bar-value' },
        document.createTextNode(`${Number.isInteger(value) ? value : value.toFixed(3)}${unit}`)),
    );
  });
  figure.append(chart);
  return figure;
}

const pairs = (object) => Object.entries(object || {});

function rate(value) {
  return typeof value === 'number' ? `${(value * 100).toFixed(1)} %` : 'n/a';
}

export async function load() {
  const params = new URLSearchParams();
  if ($('ops-from').value) params.set('from', $('ops-from').value);
  // "To" is a day the operator means to include; the API's ``to`` is exclusive (as the
  // CLI's --to), so it gets the next day.
  if ($('ops-to').value) params.set('to', nextDay($('ops-to').value));
  const report = await api('GET', `/admin/report${params.size ? `?${params}` : ''}`);
  const m = report.metrics || {};
  $('ops-period-text').textContent = `${report.period.from} to ${report.period.to} (generated ${report.generated_at}): `
    + `precision by audit ${rate(m.precision_by_audit)}, recall by audit ${rate(m.recall_by_audit)}, `
    + `appeals overturned ${rate(m.false_positive_appeal_rate)}, C2PA provenance ${rate(m.provenance_adoption_rate)}, `
    + `mean time to triage ${m.mean_time_to_triage_s == null ? 'n/a' : `${m.mean_time_to_triage_s} s`}.`;
  $('ops-charts').replaceChildren(
    barChart('Uploads by action in force', pairs(report.volumes.by_action)),
    barChart('Uploads by media type', pairs(report.volumes.by_media_type)),
    barChart('Automated proposals', pairs(report.volumes.automated_by_action)),
    barChart('Rejections by reason', pairs(report.rejections_by_reason)),
    barChart('Reviewer decisions', pairs(report.reviews.by_action)),
    barChart('Mean time to triage by lane', pairs(m.time_to_triage_s_by_lane).map(([k, v]) => [k, v.mean_s]), ' s'),
    barChart('Appeals', pairs(report.appeals)),
    barChart('Geofence rules by country', pairs(report.geofence.by_country)),
  );
  say('Report loaded.', 'ok');
}

export function wire(fail) {
  $('ops-metrics').tBodies[0].replaceChildren(...METRICS.map(([name, unit, dims, what]) => el('tr', {},
    el('th', { scope: 'row' }, el('code', { text: name })), el('td', { text: unit }), el('td', { text: dims }),
    el('td', { text: what }))));
  $('ops-period').addEventListener('submit', (event) => { event.preventDefault(); load().catch(fail); });
  $('refresh-ops').addEventListener('click', () => load().catch(fail));
}

// YYYY-MM-DD of the day after ``day`` (calendar arithmetic in UTC: no time zone shifts it).
export function nextDay(day) {
  const next = new Date(`${day}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  return next.toISOString().slice(0, 10);
}
