// The dfrpd dashboard: polls /v1/status, /v1/volumes and /v1/operations (docs/API.md) every
// 2 s and renders them. Every string from the API goes into the page through textContent or
// an attribute, never as markup. The admin token lives in sessionStorage only and is sent
// only with DELETE /v1/operations/{id}.
'use strict';

(() => {
  const kPollMs = 2000;
  const kFetchTimeoutMs = 5000;
  const kTokenKey = 'dfrp-admin-token';
  const kVolumeStates = ['active', 'full', 'paused', 'missing', 'uninitialized'];
  const kOpStates = ['running', 'succeeded', 'failed', 'cancelled'];

  const $ = (id) => document.getElementById(id);
  let lastOk = null;      // Date of the last successful poll
  let failingSince = null;

  // ---- formatting -------------------------------------------------------------------------

  const kUnits = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

  // 1024-based: "512 B", "12.0 MiB", "64 MiB" (an exact multiple drops the decimal).
  function FormatBytes(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
    if (n < 0) return '-' + FormatBytes(-n);
    let u = 0;
    let scale = 1;
    while (u < kUnits.length - 1 && n >= scale * 1024) {
      scale *= 1024;
      u++;
    }
    if (u === 0) return `${n} B`;
    const v = n / scale;
    return (Number.isInteger(v) ? String(v) : v.toFixed(1)) + ' ' + kUnits[u];
  }

  function FormatRate(bytesPerSec) {
    if (typeof bytesPerSec !== 'number' || !Number.isFinite(bytesPerSec)) return '–';
    return FormatBytes(Math.round(bytesPerSec)) + '/s';
  }

  // "45s", "3m 05s", "2h 04m", "3d 2h".
  function FormatDuration(seconds) {
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '–';
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    const two = (x) => String(x).padStart(2, '0');
    if (d > 0) return `${d}d ${h}h`;
    if (h > 0) return `${h}h ${two(m)}m`;
    if (m > 0) return `${m}m ${two(sec)}s`;
    return `${sec}s`;
  }

  function FormatTime(unixMs) {
    if (typeof unixMs !== 'number' || !Number.isFinite(unixMs) || unixMs <= 0) return null;
    return new Date(unixMs);
  }

  // "12:03:04 (5m 02s ago)", or the fallback when there is no time.
  function FormatWhen(unixMs, fallback) {
    const d = FormatTime(unixMs);
    if (d === null) return fallback;
    const ago = (Date.now() - d.getTime()) / 1000;
    const clock = d.toLocaleTimeString([], { hour12: false });
    return ago >= 0 ? `${clock} (${FormatDuration(ago)} ago)` : clock;
  }

  function Percent(part, whole) {
    if (typeof part !== 'number' || typeof whole !== 'number' || whole <= 0) return 0;
    return Math.max(0, Math.min(100, (part / whole) * 100));
  }

  // A value of unknown shape from the API (e.g. scrub.last_finding) as one line of text.
  // Error documents carry `message`, scrub findings `error`, with where it was found.
  function Describe(v) {
    if (v === null || v === undefined) return null;
    if (typeof v === 'string') return v;
    if (typeof v !== 'object') return String(v);
    const msg = typeof v.message === 'string' ? v.message
              : typeof v.error === 'string' ? v.error : JSON.stringify(v);
    const where = [];
    if (v.shard_id) where.push(`shard ${v.shard_id}`);
    if (typeof v.volume === 'number') where.push(`volume ${v.volume}`);
    const when = FormatTime(v.unix_ms);
    if (when) where.push(`at ${when.toLocaleTimeString([], { hour12: false })}`);
    return where.length ? `${msg} (${where.join(', ')})` : msg;
  }

  // ---- DOM helpers ------------------------------------------------------------------------

  // El('span', {class: 'x', 'data-a': 1}, 'text' | node, ...): attributes and text only.
  function El(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) e.setAttribute(k, String(v));
    }
    for (const c of children) {
      e.append(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return e;
  }

  function SetText(el, text) {
    const t = text === null || text === undefined ? '–' : String(text);
    if (el.textContent !== t) el.textContent = t;
  }

  function SetData(el, key, value) {
    const v = value === null || value === undefined ? '' : String(value);
    if (el.dataset[key] !== v) el.dataset[key] = v;
  }

  // A bar made by Bar(): fill width, aria values and a text label.
  function SetBar(bar, pct, label) {
    bar.firstElementChild.style.width = pct.toFixed(1) + '%';
    bar.setAttribute('aria-valuenow', pct.toFixed(0));
    bar.setAttribute('aria-valuetext', label);
  }

  function Bar(cls, ariaLabel) {
    return El('div', { class: 'bar ' + cls, role: 'progressbar', 'aria-valuemin': 0,
                       'aria-valuemax': 100, 'aria-valuenow': 0, 'aria-label': ariaLabel },
              El('div', { class: 'bar-fill' }));
  }

  function StateClass(prefix, state, known) {
    return prefix + (known.includes(state) ? state : 'unknown');
  }

  // ---- fetching ---------------------------------------------------------------------------

  // GET or DELETE a JSON route; throws an Error with the API's message on a non-2xx answer.
  async function FetchJson(path, init) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), kFetchTimeoutMs);
    let res;
    try {
      res = await fetch(path, { cache: 'no-store', ...init, signal: ctl.signal });
    } catch (e) {
      throw new Error(ctl.signal.aborted ? `${path} timed out` : `${path}: ${e.message}`);
    } finally {
      clearTimeout(timer);
    }
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      body = null;
    }
    if (!res.ok) {
      const err = body && body.error;
      const msg = err && err.message ? err.message : `HTTP ${res.status}`;
      const e = new Error(err && err.code ? `${msg} (${err.code}, HTTP ${res.status})` : msg);
      e.status = res.status;
      throw e;
    }
    if (body === null) throw new Error(`${path}: the answer is not JSON`);
    return body;
  }

  // ---- node facts and totals --------------------------------------------------------------

  function RenderNode(st) {
    SetText($('node-version'), st.version);
    SetText($('store-id'), st.store_id);
    $('store-id').title = st.state_dir ? `state dir: ${st.state_dir}` : '';
    SetText($('uptime'), FormatDuration(st.uptime_seconds));
    SetData($('uptime'), 'seconds', st.uptime_seconds);
    SetText($('api-addr'), st.api_addr);
    if (st.version) document.title = `dfrp node ${st.version}`;
  }

  function RenderTotals(st, volumes) {
    SetText($('total-shards'), st.shards);
    SetData($('total-shards'), 'value', st.shards);
    SetText($('total-payload'), FormatBytes(st.payload_bytes));
    SetData($('total-payload'), 'bytes', st.payload_bytes);
    const used = volumes.reduce((a, v) => a + (v.used || 0), 0);
    const quota = volumes.reduce((a, v) => a + (v.quota || 0), 0);
    SetText($('total-used'), `${FormatBytes(used)} of ${FormatBytes(quota)}`);
    SetData($('total-used'), 'bytes', used);
    SetText($('total-volumes'), volumes.length);
    SetData($('total-volumes'), 'value', volumes.length);
  }

  // ---- volumes ----------------------------------------------------------------------------

  function NewVolumeCard(index) {
    const field = (label, cls) =>
      El('div', { class: 'field' }, El('dt', {}, label), El('dd', { class: cls }));
    const usage = El('div', { class: 'vol-usage' },
                     El('span', { class: 'vol-used', 'data-bytes': '' }), ' of ',
                     El('span', { class: 'vol-quota', 'data-bytes': '' }),
                     El('span', { class: 'vol-pct' }));
    return El('li', { class: 'vol-card', 'data-volume': index },
              El('div', { class: 'vol-head' },
                 El('h3', { class: 'vol-title' }, `Volume ${index}`),
                 El('span', { class: 'vol-state pill' })),
              El('p', { class: 'vol-path mono' }),
              Bar('vol-bar', `Volume ${index} quota used`),
              usage,
              El('dl', { class: 'vol-fields' },
                 field('Shards', 'vol-shards'), field('Payload', 'vol-payload'),
                 field('Free', 'vol-free'), field('Segments', 'vol-segments')),
              El('p', { class: 'vol-problem', role: 'note', hidden: '' }),
              El('p', { class: 'vol-move muted', hidden: '' }));
  }

  function SetOptional(el, text) {
    el.hidden = !text;
    SetText(el, text || '');
  }

  function FillVolumeCard(card, v) {
    const q = (cls) => card.querySelector('.' + cls);
    const state = q('vol-state');
    SetText(state, v.state);
    SetData(state, 'state', v.state);
    state.className = 'vol-state pill ' + StateClass('state-', v.state, kVolumeStates);
    card.className = 'vol-card ' + StateClass('card-', v.state, kVolumeStates);
    SetText(q('vol-path'), v.path);
    const pct = Percent(v.used, v.quota);
    const usage = `${FormatBytes(v.used)} of ${FormatBytes(v.quota)}`;
    SetBar(q('vol-bar'), pct, `${usage}, ${pct.toFixed(0)}%`);
    q('vol-bar').classList.toggle('bar-high', pct >= 90);
    SetText(q('vol-used'), FormatBytes(v.used));
    SetData(q('vol-used'), 'bytes', v.used);
    SetText(q('vol-quota'), FormatBytes(v.quota));
    SetData(q('vol-quota'), 'bytes', v.quota);
    SetText(q('vol-pct'), ` (${pct.toFixed(1)}%)`);
    SetText(q('vol-shards'), v.shards);
    SetData(q('vol-shards'), 'value', v.shards);
    SetText(q('vol-payload'), FormatBytes(v.payload_bytes));
    SetData(q('vol-payload'), 'bytes', v.payload_bytes);
    SetText(q('vol-free'), FormatBytes(v.free));
    SetData(q('vol-free'), 'bytes', v.free);
    SetText(q('vol-segments'), v.segments);
    SetOptional(q('vol-problem'), v.problem);
    const moves = [];
    if (v.moved_from) moves.push(`moved from ${v.moved_from}`);
    if (v.migrating_to) moves.push(`migrating to ${v.migrating_to}`);
    SetOptional(q('vol-move'), moves.join('; '));
  }

  function RenderVolumes(volumes) {
    const list = $('volume-list');
    const seen = new Set();
    for (const v of volumes) {
      const key = String(v.index);
      seen.add(key);
      let card = list.querySelector(`:scope > [data-volume="${CSS.escape(key)}"]`);
      if (!card) card = NewVolumeCard(key);
      list.append(card);  // keeps the API's order
      FillVolumeCard(card, v);
    }
    for (const card of [...list.children]) {
      if (!seen.has(card.dataset.volume)) card.remove();
    }
    $('volumes-empty').hidden = volumes.length > 0;
  }

  // ---- throughput -------------------------------------------------------------------------

  // samples[i].t_unix_ms starts interval i, and the last one is usually still filling. The
  // chart shows the complete intervals only (a half-filled one would always dip at "now");
  // the rates "now" are over the last complete interval plus the filling one.
  function SplitSamples(st, samples, interval) {
    const last = samples[samples.length - 1];
    const daemonNow = (st.started_unix_ms || 0) + (st.uptime_seconds || 0) * 1000;
    const filling = last !== undefined && st.started_unix_ms > 0 &&
                    daemonNow < last.t_unix_ms + interval * 1000;
    return { complete: filling ? samples.slice(0, -1) : samples, filling: filling ? last : null,
             elapsed: filling ? Math.max(0, (daemonNow - last.t_unix_ms) / 1000) : 0 };
  }

  function RateNow(split, interval, key) {
    const prev = split.complete[split.complete.length - 1];
    const bytes = (prev ? prev[key] || 0 : 0) + (split.filling ? split.filling[key] || 0 : 0);
    const secs = (prev ? interval : 0) + split.elapsed;
    return secs > 0 ? bytes / secs : 0;
  }

  function RenderThroughput(st) {
    const tp = st.throughput || {};
    const interval = tp.interval_seconds > 0 ? tp.interval_seconds : 1;
    const split = SplitSamples(st, Array.isArray(tp.samples) ? tp.samples : [], interval);
    const reads = split.complete.map((s) => (s.read_bytes || 0) / interval);
    const writes = split.complete.map((s) => (s.write_bytes || 0) / interval);
    const readNow = RateNow(split, interval, 'read_bytes');
    const writeNow = RateNow(split, interval, 'write_bytes');
    SetText($('rate-read'), FormatRate(readNow));
    SetData($('rate-read'), 'bytesPerSec', readNow);
    SetText($('rate-write'), FormatRate(writeNow));
    SetData($('rate-write'), 'bytesPerSec', writeNow);
    const c = st.counters || {};
    SetText($('bytes-read'), FormatBytes(c.bytes_read));
    SetData($('bytes-read'), 'bytes', c.bytes_read);
    SetText($('bytes-written'), FormatBytes(c.bytes_written));
    SetData($('bytes-written'), 'bytes', c.bytes_written);
    const secs = (split.complete.length + (split.filling ? 1 : 0)) * interval;
    const span = secs >= 60 && secs % 60 === 0 ? `${secs / 60} min` : FormatDuration(secs);
    $('throughput-chart').setAttribute('aria-label',
        `Read and write throughput over the last ${span}: ` +
        `now ${FormatRate(readNow)} read, ${FormatRate(writeNow)} written`);
    SetText($('throughput-caption'),
            `Bytes per second over the last ${span}, one point per ${interval} s, oldest on the left.`);
    DrawChart($('throughput-chart'), reads, writes);
  }

  function ChartColors(canvas) {
    const cs = getComputedStyle(canvas);
    const v = (name, fallback) => cs.getPropertyValue(name).trim() || fallback;
    return { read: v('--read', '#2563eb'), write: v('--write', '#d97706'),
             grid: v('--grid', '#d0d7de'), text: v('--muted', '#57606a') };
  }

  // Two lines (read, write) on a shared y axis from 0 to the largest value.
  function DrawChart(canvas, reads, writes) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(200, canvas.clientWidth || 720);
    const h = Math.max(120, canvas.clientHeight || 180);
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const col = ChartColors(canvas);
    const pad = { l: 76, r: 8, t: 10, b: 20 };
    const max = Math.max(1, ...reads, ...writes);
    const plotW = w - pad.l - pad.r;
    const plotH = h - pad.t - pad.b;
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = col.text;
    ctx.strokeStyle = col.grid;
    ctx.lineWidth = 1;
    for (const f of [0, 0.5, 1]) {
      const y = Math.round(pad.t + plotH * (1 - f)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.l, y);
      ctx.lineTo(w - pad.r, y);
      ctx.stroke();
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      ctx.fillText(FormatRate(max * f), pad.l - 6, y);
    }
    ctx.textBaseline = 'alphabetic';
    ctx.textAlign = 'left';
    ctx.fillText(reads.length ? 'oldest' : 'no samples yet', pad.l, h - 4);
    ctx.textAlign = 'right';
    ctx.fillText('now', w - pad.r, h - 4);
    const line = (values, color) => {
      if (values.length === 0) return;
      const step = values.length > 1 ? plotW / (values.length - 1) : 0;
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      values.forEach((v, i) => {
        const x = pad.l + (values.length > 1 ? i * step : plotW);
        const y = pad.t + plotH * (1 - v / max);
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
    };
    line(reads, col.read);
    line(writes, col.write);
  }

  // ---- scrub ------------------------------------------------------------------------------

  function RenderScrub(scrub) {
    const s = scrub || {};
    const enabled = s.enabled ? (s.running ? 'yes, running' : 'yes, idle') : 'no';
    SetText($('scrub-enabled'), enabled);
    SetText($('scrub-rate'), s.enabled ? FormatRate(s.rate_bytes_per_sec) : '–');
    SetData($('scrub-rate'), 'bytesPerSec', s.rate_bytes_per_sec);
    const pct = typeof s.progress === 'number' ? Math.max(0, Math.min(1, s.progress)) * 100 : 0;
    SetBar($('scrub-progress'), pct, `${pct.toFixed(0)}%`);
    SetText($('scrub-progress-text'), typeof s.progress === 'number' ? `${pct.toFixed(0)}%` : '–');
    SetText($('scrub-bytes'), FormatBytes(s.bytes_verified));
    SetData($('scrub-bytes'), 'bytes', s.bytes_verified);
    SetText($('scrub-shards'), s.shards_verified);
    SetData($('scrub-shards'), 'value', s.shards_verified);
    const corrupt = $('scrub-corrupt');
    SetText(corrupt, s.corrupt_found);
    SetData(corrupt, 'value', s.corrupt_found);
    corrupt.classList.toggle('bad', s.corrupt_found > 0);
    SetText($('scrub-last-pass'), FormatWhen(s.last_pass_unix_ms, 'no full pass yet'));
    SetOptional($('scrub-note'), typeof s.note === 'string' ? s.note : '');
    const finding = Describe(s.last_finding);
    SetText($('scrub-last-finding'), finding === null ? 'none' : finding);
    $('scrub-last-finding').classList.toggle('bad', finding !== null);
  }

  // ---- operations -------------------------------------------------------------------------

  function NewOperationRow(id) {
    const cancel = El('button', { type: 'button', class: 'op-cancel' }, 'Cancel');
    cancel.addEventListener('click', () => CancelOperation(id, cancel));
    return El('tr', { 'data-operation': id },
              El('td', { class: 'op-kind' }), El('td', { class: 'op-volume' }),
              El('td', {}, El('span', { class: 'op-state pill' })),
              El('td', { class: 'op-phase' }),
              El('td', { class: 'op-progress-cell' }, Bar('op-bar', 'Operation progress'),
                 El('span', { class: 'op-progress' }),
                 El('span', { class: 'op-error', hidden: '' })),
              El('td', { class: 'op-speed' }), El('td', { class: 'op-started' }),
              El('td', { class: 'op-action' }, cancel));
  }

  // The current rate while it runs; once ended, the average over the whole operation from its
  // report (the last rate of an ended one measures only its final phase).
  function OperationSpeed(op) {
    if (op.state === 'running') return FormatRate(op.bytes_per_sec);
    const r = op.result;
    if (r && typeof r.bytes === 'number' && r.total_seconds > 0) {
      return `${FormatRate(r.bytes / r.total_seconds)} avg`;
    }
    return '–';
  }

  function FillOperationRow(row, op) {
    const q = (cls) => row.querySelector('.' + cls);
    SetText(q('op-kind'), op.kind);
    SetText(q('op-volume'), op.volume);
    const state = q('op-state');
    SetText(state, op.state);
    SetData(state, 'state', op.state);
    state.className = 'op-state pill ' + StateClass('op-', op.state, kOpStates);
    SetText(q('op-phase'), op.phase);
    const pct = op.state === 'succeeded' ? 100 : Percent(op.done, op.total);
    const progress = `${FormatBytes(op.done)} of ${FormatBytes(op.total)} (${pct.toFixed(0)}%)`;
    SetBar(q('op-bar'), pct, progress);
    q('op-bar').setAttribute('aria-label', `${op.kind} of volume ${op.volume}: progress`);
    SetText(q('op-progress'), progress);
    SetOptional(q('op-error'), op.error ? Describe(op.error) : '');
    const running = op.state === 'running';
    SetText(q('op-speed'), OperationSpeed(op));
    SetText(q('op-started'), FormatWhen(op.started_unix_ms, '–'));
    const cancel = q('op-cancel');
    cancel.hidden = !running;
    cancel.setAttribute('aria-label', `Cancel ${op.kind} of volume ${op.volume}`);
  }

  function RenderOperations(ops) {
    const body = $('operation-rows');
    const seen = new Set();
    for (const op of ops) {
      const id = String(op.id);
      seen.add(id);
      let row = body.querySelector(`:scope > [data-operation="${CSS.escape(id)}"]`);
      if (!row) row = NewOperationRow(id);
      body.append(row);  // newest first, as the API orders them
      FillOperationRow(row, op);
    }
    for (const row of [...body.children]) {
      if (!seen.has(row.dataset.operation)) row.remove();
    }
    $('operations-table').hidden = ops.length === 0;
    $('operations-empty').hidden = ops.length > 0;
  }

  function ShowOpMessage(text, bad) {
    const m = $('op-message');
    SetText(m, text);
    m.classList.toggle('bad', !!bad);
  }

  async function CancelOperation(id, button) {
    const token = $('admin-token').value.trim();
    if (!token) {
      ShowOpMessage('Enter the admin token (the contents of STATE_DIR/api-token) to cancel.',
                    true);
      $('admin-token').focus();
      return;
    }
    button.disabled = true;
    ShowOpMessage(`Cancelling ${id}…`, false);
    try {
      await FetchJson(`/v1/operations/${encodeURIComponent(id)}`, {
        method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
      ShowOpMessage(`Cancel requested for ${id}; it stops at the next block.`, false);
    } catch (e) {
      ShowOpMessage(`Cancel of ${id} failed: ${e.message}`, true);
    } finally {
      button.disabled = false;
    }
    Poll(false);
  }

  function SetUpToken() {
    const input = $('admin-token');
    try {
      input.value = sessionStorage.getItem(kTokenKey) || '';
    } catch (_) { /* storage disabled: the token lives in the field only */ }
    input.addEventListener('input', () => {
      try {
        if (input.value) sessionStorage.setItem(kTokenKey, input.value);
        else sessionStorage.removeItem(kTokenKey);
      } catch (_) { /* as above */ }
    });
    $('token-form').addEventListener('submit', (e) => e.preventDefault());
  }

  // ---- polling ----------------------------------------------------------------------------

  function ShowReachable() {
    failingSince = null;
    $('unreachable').hidden = true;
    document.body.classList.remove('stale');
    lastOk = new Date();
    SetText($('poll-state'), 'live');
    $('poll-state').className = 'poll-state live';
    SetText($('last-update'), `Updated ${lastOk.toLocaleTimeString([], { hour12: false })}.`);
  }

  function ShowUnreachable(err) {
    if (failingSince === null) failingSince = new Date();
    const t = (d) => d.toLocaleTimeString([], { hour12: false });
    const shown = lastOk ? `the figures below are from ${t(lastOk)}` : 'no data yet';
    SetText($('unreachable-detail'),
            `No answer since ${t(failingSince)} (${err.message}); retrying every ` +
            `${kPollMs / 1000} s, ${shown}.`);
    $('unreachable').hidden = false;
    document.body.classList.add('stale');
    SetText($('poll-state'), 'unreachable');
    $('poll-state').className = 'poll-state down';
  }

  let timer = null;
  let polling = false;
  let lastStatus = null;

  function Render(st, vols, ops, prices, usage) {
    const volumes = Array.isArray(vols.volumes) ? vols.volumes : [];
    lastStatus = st;
    RenderNode(st);
    RenderTotals(st, volumes);
    RenderVolumes(volumes);
    RenderThroughput(st);
    RenderScrub(st.scrub);
    RenderOperations(Array.isArray(ops.operations) ? ops.operations : []);
    RenderMarket(prices, usage);
  }

  // ---- market -----------------------------------------------------------------------------

  const kResources = [['cpu_sec', 'CPU-second'], ['gpu_sec', 'GPU-second'],
    ['storage_gib_month', 'GiB-month stored'], ['write_gib', 'GiB written'],
    ['read_gib', 'GiB read'], ['proof', 'Proof']];

  // One small line chart of a resource's price over the epochs kept (oldest on the left).
  function DrawPriceChart(canvas, values) {
    const dpr = window.devicePixelRatio || 1;
    const w = 160, h = 36;
    if (canvas.width !== w * dpr) {
      canvas.width = w * dpr;
      canvas.height = h * dpr;
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const col = ChartColors(canvas);
    ctx.strokeStyle = col.grid;
    ctx.strokeRect(0.5, 0.5, w - 1, h - 1);
    if (values.length === 0) return;
    const max = Math.max(...values), min = Math.min(...values);
    const span = max - min || 1;
    ctx.strokeStyle = col.read;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    values.forEach((v, i) => {
      const x = 2 + (values.length > 1 ? (i * (w - 4)) / (values.length - 1) : w - 4);
      const y = h - 3 - ((v - min) / span) * (h - 6);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }

  function RenderMarket(prices, usage) {
    SetText(document.getElementById('market-currency'), prices.currency || '–');
    const epoch = document.getElementById('market-epoch');
    SetText(epoch, String(prices.epoch));
    SetData(epoch, 'value', prices.epoch);
    SetText(document.getElementById('market-epoch-seconds'), String(prices.epoch_seconds));
    const note = document.getElementById('market-note');
    note.hidden = !prices.note;
    SetText(note, prices.note || '');
    const body = document.getElementById('market-rows');
    SetData(body, 'afterEpoch', prices.prices_after_epoch);  // which vector is shown
    const history = Array.isArray(prices.history) ? prices.history : [];
    for (const [key, label] of kResources) {
      let row = body.querySelector(`[data-resource="${key}"]`);
      if (!row) {
        row = El('tr', { 'data-resource': key },
          El('th', { scope: 'row' }, label),
          El('td', { class: 'market-price' }), El('td', { class: 'market-util' }),
          El('td', { class: 'market-floor muted' }), El('td', { class: 'market-ceiling muted' }),
          El('td', {}, El('canvas', { class: 'price-chart', width: '160', height: '36',
            role: 'img', 'aria-label': `${label} price over the last epochs` })));
        body.appendChild(row);
      }
      const price = row.querySelector('.market-price');
      SetText(price, prices.prices[key]);
      SetData(price, 'price', prices.prices[key]);
      const util = prices.utilization_bps[key];
      SetText(row.querySelector('.market-util'), `${(util / 100).toFixed(1)}%`);
      SetText(row.querySelector('.market-floor'), prices.floor[key]);
      SetText(row.querySelector('.market-ceiling'), prices.ceiling[key]);
      const canvas = row.querySelector('.price-chart');
      const values = history.map((e) => Number(e.prices[key]));
      SetData(canvas, 'points', values.length);
      DrawPriceChart(canvas, values);
    }
    const list = document.getElementById('top-wallets');
    const top = Array.isArray(usage.top_wallets) ? usage.top_wallets : [];
    list.replaceChildren(...top.map((w) => El('li', { 'data-wallet': w.wallet || w.key || '' },
      El('code', {}, w.wallet || w.key || ''), ' ',
      El('span', { class: 'muted' }, `${FormatBytes(w.bytes_written || 0)} written, ` +
        `${FormatBytes(w.bytes_read || 0)} read, ${w.proofs_served || 0} proofs`))));
    document.getElementById('wallets-empty').hidden = top.length > 0;
  }

  // ---- ledger -----------------------------------------------------------------------------

  function RenderLedger(l) {
    const has = !!(l && (l.wallet || l.authority));
    document.getElementById('ledger-empty').hidden = has;
    document.getElementById('ledger-facts').hidden = !(l && l.wallet);
    const err = document.getElementById('ledger-error');
    err.hidden = !(l && l.wallet && l.wallet.error);
    SetText(err, l && l.wallet && l.wallet.error ? `The committee did not answer: ${l.wallet.error}` : '');
    if (l && l.wallet) {
      SetText(document.getElementById('ledger-address'), l.wallet.address);
      const bal = document.getElementById('ledger-balance');
      SetText(bal, l.wallet.balance);
      SetData(bal, 'baseUnits', l.wallet.balance_base_units);
      SetText(document.getElementById('ledger-currency'), l.currency);
      SetText(document.getElementById('ledger-seq'), l.wallet.next_seq);
    }
    const prov = l && l.escrows;
    document.getElementById('ledger-provider').hidden = !prov;
    if (prov) {
      SetText(document.getElementById('ledger-open'), prov.open_escrows);
      SetText(document.getElementById('ledger-releases'), prov.releases_sent);
      SetText(document.getElementById('ledger-failures'), prov.failures);
      const escrows = Array.isArray(prov.escrows) ? prov.escrows : [];
      document.getElementById('ledger-escrows').replaceChildren(...escrows.map((e) =>
        e.kind === 'read'
          // A read escrow: paid by the payer's receipts for the bytes this node served.
          ? El('li', { 'data-escrow': e.id, 'data-kind': 'read',
            'data-redeemed': e.redeemed_bytes },
          El('code', {}, e.id.slice(0, 16)), ` reads at ${e.price_per_mib} ${l.currency}/MiB: ` +
            `${e.receipted_bytes} bytes receipted, ${e.redeemed_bytes} redeemed ` +
            `(${e.paid_to_provider} ${l.currency} to this node, ${e.margin} margin); ` +
            `${e.remaining} ${l.currency} left`)
          : El('li', { 'data-escrow': e.id, 'data-released': e.released,
            'data-refunded': e.refunded },
          El('code', {}, e.id.slice(0, 16)), ` shard ${e.shard_id.slice(0, 8)}: ${e.periods} periods, ` +
            `${e.released} released (${e.paid_to_provider} ${l.currency} to this node, ` +
            `${e.margin} margin), ${e.refunded} refunded, ${e.to_come} to come; ` +
            `${e.remaining} ${l.currency} left`)));
      const outcomes = Object.entries(prov.last_outcome || {});
      document.getElementById('ledger-outcomes').replaceChildren(...outcomes.map(([id, o]) =>
        El('li', { 'data-escrow': id }, El('code', {}, id.slice(0, 16)), ' ',
          El('span', { class: 'muted' }, o))));
    }
    const auth = l && l.authority;
    document.getElementById('ledger-authority').hidden = !auth;
    if (auth) {
      SetText(document.getElementById('ledger-index'), auth.index);
      SetText(document.getElementById('ledger-applied'), auth.certificates_applied);
      const c = document.getElementById('ledger-conserved');
      SetText(c, auth.conserved ? 'conserved' : `NOT conserved: ${auth.problem}`);
      SetData(c, 'conserved', auth.conserved);
      const eq = Array.isArray(auth.equivocations) ? auth.equivocations : [];
      const n = document.getElementById('ledger-equivocation-count');
      SetText(n, eq.length);
      SetData(n, 'count', eq.length);
      document.getElementById('ledger-equivocations').replaceChildren(...eq.map((e) =>
        El('li', { 'data-sender': e.sender }, El('code', {}, e.sender), ` at seq ${e.seq}`)));
      RenderPayouts(auth, l.currency);
      const peers = l.ledger_sync && Array.isArray(l.ledger_sync.peers) ? l.ledger_sync.peers : [];
      document.getElementById('ledger-peers').replaceChildren(...peers.map((p) =>
        El('li', { 'data-peer': p.authority }, `from authority ${p.authority}: `,
          `${p.applied} applied, ${p.rejected} rejected` +
          (p.last_error ? ` (${p.last_error})` : ''))));
    }
  }

  // Payouts over time: a stacked bar per period bucket (to providers, the owner's margin,
  // refunds), oldest on the left, with the totals beneath.
  function RenderPayouts(auth, currency) {
    const buckets = Array.isArray(auth.payouts) ? auth.payouts : [];
    const t = auth.payout_totals || {};
    const totals = document.getElementById('ledger-payouts-totals');
    SetData(totals, 'buckets', buckets.length);
    SetData(totals, 'toProviders', t.to_providers_base_units);
    SetData(totals, 'margin', t.margin_base_units);
    SetData(totals, 'refunded', t.refunded_base_units);
    document.getElementById('ledger-payouts-empty').hidden = buckets.length > 0;
    const canvas = document.getElementById('ledger-payouts-chart');
    canvas.hidden = buckets.length === 0;
    SetText(totals, buckets.length === 0 ? '' :
      `${t.to_providers} ${currency} to providers, ${t.margin} margin to the owner, ` +
      `${t.refunded} refunded, over ${buckets.length} period(s) of ` +
      `${auth.payout_bucket_seconds} s`);
    if (buckets.length === 0) return;
    const dpr = window.devicePixelRatio || 1;
    const w = 320, h = 64;
    if (canvas.width !== w * dpr) {
      canvas.width = w * dpr;
      canvas.height = h * dpr;
      canvas.style.width = `${w}px`;
      canvas.style.height = `${h}px`;
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const col = ChartColors(canvas);
    ctx.strokeStyle = col.grid;
    ctx.strokeRect(0.5, 0.5, w - 1, h - 1);
    const parts = (b) => [Number(b.to_providers_base_units), Number(b.margin_base_units),
      Number(b.refunded_base_units)];
    const max = Math.max(1, ...buckets.map((b) => parts(b).reduce((x, y) => x + y, 0)));
    const bw = Math.max(2, Math.floor((w - 4) / Math.max(buckets.length, 1)) - 1);
    const colors = [col.read, col.write, col.grid];
    buckets.forEach((b, i) => {
      let y = h - 2;
      parts(b).forEach((v, k) => {
        const bh = (v / max) * (h - 4);
        ctx.fillStyle = colors[k];
        ctx.fillRect(2 + i * (bw + 1), y - bh, bw, bh);
        y -= bh;
      });
    });
  }

  // The mesh panel: this node's place, its peers (state, vector distance, prices, first-hand
  // uptime, trust) and the price field around it (the storage price's spread among alive peers).
  function RenderMesh(node, peers) {
    const empty = document.getElementById('mesh-empty');
    const body = document.getElementById('mesh-body');
    empty.hidden = node !== null;
    body.hidden = node === null;
    if (node === null) return;
    SetText(document.getElementById('mesh-url'), node.url || '–');
    const counts = node.peers || {};
    const alive = document.getElementById('mesh-alive');
    SetText(alive, String(counts.alive ?? 0));
    SetData(alive, 'count', counts.alive ?? 0);
    SetText(document.getElementById('mesh-suspect'), String(counts.suspect ?? 0));
    SetText(document.getElementById('mesh-dead'), String(counts.dead ?? 0));
    SetText(document.getElementById('mesh-unverified'), String(counts.unverified ?? 0));
    const error = document.getElementById('mesh-error');
    error.hidden = !node.last_error;
    SetText(error, node.last_error ? `Last exchange problem: ${node.last_error}` : '');
    const list = Array.isArray(peers.peers) ? peers.peers : [];
    const rows = document.getElementById('mesh-rows');
    rows.replaceChildren(...list.map((p) => {
      const pv = p.price_vector || {};
      const addr = String(p.address || '');
      return El('tr', { 'data-address': addr, 'data-state': String(p.state) },
        El('td', { class: 'mesh-state' }, String(p.state)),
        El('td', {}, El('code', { title: `${addr} at ${p.url}` },
          `${addr.slice(0, 14)}… ${p.url}`)),
        El('td', { class: 'mesh-distance' }, Number(p.distance).toFixed(3)),
        El('td', { class: 'mesh-storage-price' }, String(pv.storage_gib_month ?? '–')),
        El('td', { class: 'mesh-read-price' }, String(pv.read_gib ?? '–')),
        El('td', { class: 'mesh-uptime' }, Number(p.uptime).toFixed(2)),
        El('td', { class: 'mesh-trust', title: 'global trust over the most trusted peer\'s ' +
          '(EigenTrust); local: this node\'s own evidence' },
        Number(p.trust ? p.trust.score : 0).toFixed(2)));
    }));
    const storage = list.filter((p) => p.state === 'alive' && p.price_vector)
      .map((p) => Number(p.price_vector.storage_gib_month)).sort((a, b) => a - b);
    const field = document.getElementById('mesh-field');
    SetData(field, 'peers', storage.length);
    SetText(field, storage.length === 0 ? 'No alive peer announces prices yet.' :
      `Storage price among ${storage.length} alive peer(s): ${storage[0]} to ` +
      `${storage[storage.length - 1]}, median ${storage[Math.floor((storage.length - 1) / 2)]} ` +
      `${peers.currency || ''} per GiB-month.`);
  }

  async function PollMesh() {
    try {
      const [node, peers] = await Promise.all([FetchJson('/v1/mesh/node'),
        FetchJson('/v1/mesh/peers')]);
      RenderMesh(node, peers);
    } catch (e) {
      if (e.status === 404) RenderMesh(null, null);
      else console.error('dashboard: the mesh view', e);
    }
  }

  // How a paid job's escrow was settled, as a table cell says it: open until the committee
  // settles it, then released (with what this provider was paid) or refunded (on a certified
  // fraud proof, or because no claim came in time).
  function SettlementText(j) {
    if (!j.escrow) return '–';
    const s = j.settlement || {};
    if (s.state === 'released') return `released: ${s.to_provider}`;
    if (s.state === 'refunded') return s.fraud_proof ? 'refunded: fraud proof' : 'refunded';
    return 'open';
  }

  // The compute panel: the listener's slots and queue (/v1/status's compute), its jobs by state,
  // what its paid jobs earned, and the last jobs (/v1/compute/jobs), newest first: state, app,
  // quote, whether an escrow pays it and how that was settled, the CPU time it used.
  function RenderCompute(node, jobs) {
    const empty = document.getElementById('compute-empty');
    const body = document.getElementById('compute-body');
    empty.hidden = node !== null;
    body.hidden = node === null;
    if (node === null) return;
    const slots = document.getElementById('compute-slots');
    SetText(slots, String(node.slots ?? '–'));
    SetData(slots, 'slots', node.slots ?? '');
    const queued = document.getElementById('compute-queued');
    SetText(queued, String(node.queued ?? 0));
    SetData(queued, 'queued', node.queued ?? 0);
    SetText(document.getElementById('compute-running'),
      node.running ? `${String(node.running).slice(0, 16)}…` : 'nothing');
    SetText(document.getElementById('compute-refused'), String(node.refused ?? 0));
    const byState = node.jobs || {};
    const names = Object.keys(byState).sort();
    const counts = document.getElementById('compute-counts');
    const total = names.reduce((n, k) => n + Number(byState[k]), 0);
    SetData(counts, 'total', total);
    SetText(counts, total === 0 ? 'No job yet.' :
      `Jobs: ${names.map((k) => `${byState[k]} ${k}`).join(', ')}.`);
    const earned = document.getElementById('compute-earned');
    SetText(earned, String(node.earned ?? '0'));
    SetData(earned, 'baseUnits', node.earned_base_units ?? 0);
    const paid = node.paid_jobs || {};
    const paidNames = Object.keys(paid).sort();
    SetText(document.getElementById('compute-paid-jobs'), paidNames.length === 0 ?
      '(no paid job yet)' : `(paid jobs: ${paidNames.map((k) => `${paid[k]} ${k}`).join(', ')})`);
    const list = Array.isArray(jobs.jobs) ? jobs.jobs : [];
    const rows = document.getElementById('compute-rows');
    rows.replaceChildren(...list.map((j) => {
      const id = String(j.job_id || '');
      const report = j.report || {};
      return El('tr', { 'data-job': id, 'data-state': String(j.state) },
        El('td', {}, El('code', { title: id }, `${id.slice(0, 16)}…`)),
        El('td', { class: 'compute-state' }, String(j.state)),
        El('td', { class: 'compute-app' }, String(j.app)),
        El('td', { class: 'compute-ranks' }, String(j.ranks)),
        El('td', { class: 'compute-quote' }, String((j.quote || {}).total ?? '–')),
        El('td', { class: 'compute-paid' }, j.escrow ? 'escrow' : '–'),
        El('td', { class: 'compute-settled', 'data-settled': String((j.settlement || {}).state || '') },
          SettlementText(j)),
        El('td', { class: 'compute-cpu' },
          report.cpu_ms === undefined ? '–' : (Number(report.cpu_ms) / 1000).toFixed(1)));
    }));
  }

  // The listener comes with /v1/status (`compute`, as /v1/compute/node gives it); only a
  // compute node is asked for its jobs (elsewhere the 404 would be a console error).
  async function PollCompute(status) {
    if (!status || !status.compute) {
      RenderCompute(null, null);
      return;
    }
    try {
      RenderCompute(status.compute, await FetchJson('/v1/compute/jobs?limit=20'));
    } catch (e) {
      if (e.status === 404) RenderCompute(null, null);
      else console.error('dashboard: the compute view', e);
    }
  }

  // The ledger view asks the committee for the wallet's balance: every fifth poll, not every.
  let ledgerPolls = 0;
  async function PollLedger() {
    if (ledgerPolls++ % 5 !== 0) return;
    try {
      RenderLedger(await FetchJson('/v1/ledger/node'));
    } catch (e) {
      console.error('dashboard: the ledger view', e);
    }
  }

  async function Poll(reschedule = true) {
    if (polling) return;
    polling = true;
    let answers = null;
    try {
      answers = await Promise.all([
        FetchJson('/v1/status'), FetchJson('/v1/volumes'), FetchJson('/v1/operations'),
        FetchJson('/v1/market/prices?history=60'), FetchJson('/v1/market/usage')]);
    } catch (e) {
      ShowUnreachable(e);
    }
    try {
      if (answers) {
        Render(...answers);
        ShowReachable();
        await PollMesh();
        await PollCompute(answers[0]);
        await PollLedger();
      }
    } catch (e) {
      // Our bug or an answer of an unexpected shape, not an unreachable daemon.
      console.error('dashboard: cannot render the answers', e);
    } finally {
      polling = false;
    }
    if (reschedule) {
      clearTimeout(timer);
      timer = setTimeout(Poll, kPollMs);
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    SetUpToken();
    window.addEventListener('resize', () => {
      if (lastStatus) RenderThroughput(lastStatus);
    });
    Poll();
  });
})();
