import { createHash } from 'node:crypto';

/*
 * The dashboard's only static assets, kept as strings in a TypeScript module so `npm run build`
 * ships them in dist/ with the code (nothing to copy, no CDN, works offline). Both are small
 * enough to read in one sitting; neither needs a build step.
 */

/**
 * The client script: relative ages that keep counting, the live region refetched when the server's
 * snapshot version changes (one EventSource per page), and the admin actions (a confirmation
 * dialog, then a POST carrying the X-Dispatch-UI header that cross-site requests cannot send).
 */
export const DASHBOARD_JS = `'use strict';
(() => {
  const live = document.getElementById('live');
  const liveState = document.getElementById('live-state');
  const statusBox = document.getElementById('action-status');
  const dialog = document.getElementById('confirm');

  const ago = (ms) => {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min ago';
    return Math.floor(s / 86400) + ' d ago';
  };
  const tickAges = () => {
    for (const el of document.querySelectorAll('time[data-ago]')) el.textContent = ago(Date.now() - Date.parse(el.dateTime));
  };
  tickAges();
  setInterval(tickAges, 1000);

  const say = (text, kind) => {
    if (!statusBox) return;
    statusBox.textContent = text;
    statusBox.className = 'action-status ' + (kind || '');
  };

  let busy = false;
  let again = false;
  /** Refetches the live region of this page, keeping ticked boxes and the focused control. */
  const refresh = async () => {
    if (!live) return;
    if (busy) { again = true; return; }
    busy = true;
    try {
      const res = await fetch(location.href, { headers: { 'X-Dispatch-Fragment': 'live' }, credentials: 'same-origin' });
      if (res.status === 401) { location.reload(); return; }
      if (!res.ok) return;
      const html = await res.text();
      const ticked = new Set(Array.from(live.querySelectorAll('input[name=ids]:checked'), (box) => box.value));
      const focused = document.activeElement && live.contains(document.activeElement) ? document.activeElement.id : '';
      live.innerHTML = html;
      live.dataset.version = res.headers.get('X-Dispatch-Version') || '';
      for (const box of live.querySelectorAll('input[name=ids]')) if (ticked.has(box.value)) box.checked = true;
      if (focused) { const el = document.getElementById(focused); if (el) el.focus(); }
      tickAges();
    } catch (error) {
      // The next snapshot tries again.
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  };

  if (live && 'EventSource' in window) {
    const source = new EventSource('/ui/events');
    source.addEventListener('open', () => { liveState.textContent = 'live'; liveState.className = 'live-state on'; });
    source.addEventListener('error', () => { liveState.textContent = 'reconnecting…'; liveState.className = 'live-state off'; });
    source.addEventListener('snapshot', (event) => {
      const { version } = JSON.parse(event.data);
      if (version !== live.dataset.version) refresh();
    });
  } else if (liveState) {
    liveState.textContent = '';
  }

  const confirmFirst = (text) => new Promise((resolve) => {
    document.getElementById('confirm-text').textContent = text;
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
  });

  const post = async (url, body) => {
    const res = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-Dispatch-UI': '1' },
      body: JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((data.error && data.error.message) || 'HTTP ' + res.status);
    return data;
  };

  document.addEventListener('click', async (event) => {
    const button = event.target.closest('button[data-action], button[data-bulk]');
    if (!button) return;
    let url;
    let body;
    let question;
    if (button.dataset.action) {
      url = button.dataset.action;
      body = JSON.parse(button.dataset.body || '{}');
      question = button.dataset.confirm;
    } else {
      const ids = Array.from(document.querySelectorAll('input[name=ids]:checked'), (box) => box.value);
      if (ids.length === 0) { say('Select tasks first (the boxes in the first column).', 'error'); return; }
      url = '/ui/tasks/bulk';
      body = { action: button.dataset.bulk, ids };
      question = (button.dataset.bulk === 'cancel' ? 'Cancel ' : 'Requeue ') + ids.length + ' selected task(s)?';
    }
    if (!(await confirmFirst(question))) return;
    button.disabled = true;
    try {
      const data = await post(url, body);
      say(data.message || 'Done.', 'ok');
      refresh();
    } catch (error) {
      say(error.message, 'error');
    } finally {
      button.disabled = false;
    }
  });
})();
`;

/** Colours meet WCAG AA (4.5:1 or more for text) on their backgrounds; narrow screens get stacked rows. */
export const DASHBOARD_CSS = `
:root { --fg: #1a1a1a; --muted: #555; --bg: #fff; --panel: #f3f4f6; --line: #c9ccd1; --accent: #0b5cad;
  --ok-bg: #e3f4e6; --ok-fg: #14532d; --warn-bg: #fff1cc; --warn-fg: #6b3b00; --bad: #a61b1b; --focus: #b45309; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -9999px; }
.skip:focus { left: 8px; top: 8px; background: var(--bg); padding: 4px 8px; z-index: 10; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
header { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; padding: 8px 16px; background: #10243e; color: #fff; }
header a, header button { color: #fff; }
header .brand { font-size: 1.1em; }
header nav { display: flex; gap: 12px; }
header nav a { padding: 4px 2px; text-decoration: none; border-bottom: 2px solid transparent; }
header nav a[aria-current=page] { border-bottom-color: #fff; font-weight: 600; }
header .who { margin-left: auto; }
header button { background: transparent; border: 1px solid #fff; }
.live-state { font-size: .85em; padding: 2px 6px; border-radius: 4px; background: #33475f; }
.live-state.on { background: #1d6b3a; }
.live-state.off { background: #8a2b2b; }
main { padding: 12px 16px 32px; max-width: 1400px; }
h1 { font-size: 1.4em; margin: 4px 0 8px; }
h2 { font-size: 1.1em; margin: 20px 0 8px; }
.muted { color: var(--muted); }
.empty { color: var(--muted); font-style: italic; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { background: var(--panel); font-weight: 600; }
button { font: inherit; padding: 5px 10px; border-radius: 4px; border: 1px solid var(--accent); background: var(--bg); color: var(--accent); cursor: pointer; min-height: 32px; }
button.danger { border-color: var(--bad); color: var(--bad); }
button:disabled { opacity: .6; cursor: wait; }
#confirm button.danger { background: var(--bad); color: #fff; }
input, select { font: inherit; padding: 4px 6px; border: 1px solid #767676; border-radius: 4px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: .9em; }
.badge.ok { background: var(--ok-bg); color: var(--ok-fg); }
.badge.warn { background: var(--warn-bg); color: var(--warn-fg); }
.status.failed, .status.timeout, .error-text { color: var(--bad); }
.action-status:empty { display: none; }
.action-status { padding: 6px 10px; border-radius: 4px; background: var(--panel); }
.action-status.ok { background: var(--ok-bg); color: var(--ok-fg); }
.action-status.error { background: #fde2e2; color: var(--bad); }
.chart { display: block; }
.chart .axis { stroke: var(--line); }
.chart polyline { fill: none; stroke-width: 2; }
.chart .created, .key.created { stroke: var(--accent); color: var(--accent); }
.chart .finished, .key.finished { stroke: #1d6b3a; color: #1d6b3a; stroke-dasharray: 4 3; }
.key { font-weight: 600; }
.legend { color: var(--muted); margin: 0 0 8px; }
.filters { display: flex; flex-wrap: wrap; gap: 8px 12px; align-items: end; margin-bottom: 10px; }
.filters label { display: flex; flex-direction: column; font-size: .9em; }
.bulk { display: flex; gap: 8px; margin-bottom: 10px; }
ul.plain, ol.plain { margin: 0; padding-left: 1.2em; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0 0 12px; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
pre, code.wrap { background: var(--panel); padding: 8px; border-radius: 4px; overflow-x: auto; white-space: pre-wrap; word-break: break-word; display: block; }
code.wrap { padding: 2px 4px; font-size: .85em; }
dialog { border: 1px solid var(--line); border-radius: 6px; max-width: min(480px, 92vw); }
dialog .buttons { display: flex; gap: 8px; justify-content: flex-end; }
form.inline { display: inline; }
.signin { max-width: 380px; margin: 10vh auto; }
.signin form { display: flex; flex-direction: column; gap: 8px; }
@media (max-width: 700px) {
  header .who { margin-left: 0; }
  table thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table, tbody, tr, th, td { display: block; width: 100%; }
  tbody tr { border: 1px solid var(--line); border-radius: 6px; margin-bottom: 10px; padding: 4px 0; }
  tbody th, tbody td { border: 0; padding: 3px 10px; }
  td[data-label]::before, th[data-label]::before { content: attr(data-label) ": "; font-weight: 600; }
  .chart { width: 100%; height: auto; }
}
`;

/** A content hash per asset, so pages can ask browsers to cache them until the next release. */
export const ASSET_VERSION = createHash('sha256').update(DASHBOARD_JS).update(DASHBOARD_CSS).digest('base64url').slice(0, 10);
