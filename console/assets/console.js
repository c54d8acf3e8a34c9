// Baton operator console. Plain JavaScript, no build step, no library: it
// talks only to the node that served it, through the /v1 API, with the token
// the user pasted (kept in this tab's sessionStorage). Reads use
// consistency=stale, so that the node answers from its own state and the page
// keeps working while the cluster elects a new leader; writes go through the
// node, which forwards them to the leader.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'baton.token';
  const PHASES = ['unassigned', 'activating', 'active', 'preparing', 'drained', 'orphaned'];
  // Audit event types the page follows for the handoff timeline, the worker
  // view and the grid's refresh (everything but checkpoints and declarations,
  // which can be large).
  const MOTION_TYPES = ['Prepared', 'Drained', 'Committed', 'Activated', 'Aborted', 'Claimed', 'Released',
    'WorkerJoined', 'LeaveStarted', 'WorkerLeft', 'WorkerCordoned', 'PartitionPinned', 'RebalanceSet', 'PartitionRemoved'];
  const EVENT_TYPES = ['WorkerJoined', 'LeaveStarted', 'WorkerLeft', 'WorkerCordoned', 'PartitionsDeclared', 'PartitionRemoved',
    'Claimed', 'Prepared', 'Drained', 'Committed', 'Activated', 'Aborted', 'Released', 'Checkpointed', 'PartitionPinned',
    'RebalanceSet', 'NodeRegistered', 'NodeRemoved', 'EntryRejected'];
  const MAX_AUDIT_ROWS = 500;
  const MAX_HANDOFFS = 1000;
  // A follow stream sends a keep-alive every 5 s; three missed ones mean the
  // node stopped answering (frozen, cut off): reconnect.
  const FOLLOW_SILENCE_MS = 15000;
  const PAGE = 1000;
  // Codes after which a write's outcome is open and a retry with the same
  // request id is safe (docs/api.md), and how long an action retries them.
  const RETRYABLE = new Set(['no_leader', 'not_leader', 'unknown_outcome', 'unavailable', 'not_ready', 'timeout', 'internal', 'unreachable']);
  const RETRY_WRITES_MS = 20000;

  // ---- state ---------------------------------------------------------------

  const S = {
    view: 'grid',
    status: null, // this node's /v1/cluster/status
    summary: null, // /v1/cluster/summary
    parts: [], // partitions, sorted by id
    partIndex: new Map(), // id -> position in parts
    gridIndex: -1, // the state index the grid shows
    gridFetchedAt: 0,
    gridFetchMs: 0,
    gridPages: 0,
    gridDirty: false,
    workers: [],
    plan: null, planAt: 0, planError: null,
    nodes: null,
    selected: null,
    filters: { worker: '', phase: '' },
    layout: null,
    render: { ms: null, frameMs: null, count: 0 },
    handoffs: new Map(), // key -> handoff record
    handoffOrder: [], // keys, oldest first
    byPartitionEpoch: new Map(), // "p@epoch" -> handoff key, for Activated
    workerLeft: new Map(), // worker -> last WorkerLeft event
    audit: { rows: [], paused: false, ctl: null, state: '' },
    motion: { ctl: null, state: '' },
    errors: new Map(), // source -> ApiError
    gen: 0, // bumped when the token changes: answers to older requests are dropped
  };

  // ---- API -----------------------------------------------------------------

  class ApiError extends Error {
    constructor(code, status, message) {
      super(message);
      this.code = code;
      this.status = status;
    }
    toString() { return `${this.code}${this.status ? ' (' + this.status + ')' : ''}: ${this.message}`; }
  }

  const token = () => sessionStorage.getItem(TOKEN_KEY) || '';

  function headers(extra) {
    const h = { Accept: 'application/json', ...extra };
    const t = token();
    if (t) h.Authorization = 'Bearer ' + t;
    return h;
  }

  async function errorOf(res) {
    const text = await res.text().catch(() => '');
    try {
      const e = JSON.parse(text).error;
      if (e && e.code) return new ApiError(e.code, e.status || res.status, e.message || '');
    } catch (_) { /* not JSON: fall through */ }
    return new ApiError('http_' + res.status, res.status, text.slice(0, 300) || res.statusText);
  }

  async function api(method, path, opts = {}) {
    const h = headers(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {});
    if (opts.requestId) h['X-Request-Id'] = opts.requestId;
    let res;
    try {
      res = await fetch(path, {
        method, headers: h, cache: 'no-store', signal: opts.signal,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError('unreachable', 0, `${method} ${path}: ${e.message}`);
    }
    if (!res.ok) throw await errorOf(res);
    const data = res.status === 204 ? null : await res.json();
    return { data, headers: res.headers };
  }

  function requestId() {
    const b = new Uint8Array(12);
    crypto.getRandomValues(b);
    return 'ui-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  // g reads field k of a wire object, in snake_case or as the Go field name
  // (the dry run's placement fields have no json tags yet).
  function g(o, k) {
    if (o == null) return undefined;
    if (o[k] !== undefined) return o[k];
    return o[k.replace(/(^|_)(\w)/g, (_, __, c) => c.toUpperCase())];
  }

  // ---- helpers -------------------------------------------------------------

  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // Owner colours: a palette without the yellow, orange and red of the
  // phase markers. A worker's slot is its id's hash, moved to the next free
  // slot (in id order) when a known worker holds it already, so that a
  // handful of workers never share a colour and each keeps its colour while
  // the set of workers stays the same.
  const PALETTE = ['#4e79a7', '#59a14f', '#b07aa1', '#76b7b2', '#9c755f', '#a0cbe8', '#8cd17d', '#d4a6c8',
    '#499894', '#79706e', '#5f4b8b', '#b6992d'];
  let colours = new Map();
  function hash(w) {
    let h = 2166136261;
    for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w.charCodeAt(i), 16777619);
    return h >>> 0;
  }
  function assignColours(ids) {
    const next = new Map();
    const used = new Set();
    for (const w of ids.slice().sort()) {
      let slot = hash(w) % PALETTE.length;
      for (let k = 0; k < PALETTE.length && used.has(slot); k++) slot = (slot + 1) % PALETTE.length;
      used.add(slot);
      next.set(w, PALETTE[slot]);
    }
    colours = next;
  }
  function ownerColour(w) {
    if (!w) return '#d5d9df';
    let c = colours.get(w);
    if (!c) {
      c = PALETTE[hash(w) % PALETTE.length];
      colours.set(w, c);
    }
    return c;
  }

  function fmtDur(ms) {
    if (ms == null || !isFinite(ms)) return '–';
    if (ms < 1) return ms.toFixed(2) + ' ms';
    if (ms < 1000) return Math.round(ms) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
    if (ms < 3600000) return Math.floor(ms / 60000) + 'm' + String(Math.floor(ms / 1000) % 60).padStart(2, '0') + 's';
    return Math.floor(ms / 3600000) + 'h' + String(Math.floor(ms / 60000) % 60).padStart(2, '0') + 'm';
  }

  const nsToMs = (ns) => (typeof ns === 'number' ? ns / 1e6 : NaN);
  function fmtTime(at) {
    const d = new Date(at);
    if (isNaN(d)) return esc(at);
    return d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  }

  function percentile(sorted, p) {
    if (!sorted.length) return NaN;
    const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
    return sorted[i];
  }

  // ---- errors and notices --------------------------------------------------

  function setError(source, err) {
    if (err && err.name === 'AbortError') return;
    if (err) S.errors.set(source, err); else S.errors.delete(source);
    const box = $('errors');
    if (!S.errors.size) { box.hidden = true; box.innerHTML = ''; return; }
    box.hidden = false;
    box.innerHTML = Array.from(S.errors, ([src, e]) =>
      `<div data-source="${esc(src)}" data-code="${esc(e.code)}">${esc(src)}: ${esc(e.toString())}</div>`).join('');
  }

  let noticeTimer = 0;
  function notice(text) {
    const n = $('notice');
    n.textContent = text;
    n.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { n.hidden = true; }, 8000);
  }

  // ---- polling -------------------------------------------------------------

  async function pollStatus() {
    const gen = S.gen;
    try {
      const { data } = await api('GET', '/v1/cluster/status');
      if (gen !== S.gen) return;
      S.status = data;
      setError('status', null);
    } catch (e) {
      if (gen !== S.gen) return;
      setError('status', e); S.status = null;
    }
    renderHeader();
  }

  async function pollSummary() {
    const gen = S.gen;
    try {
      const { data } = await api('GET', '/v1/cluster/summary?consistency=stale');
      if (gen !== S.gen) return;
      S.summary = data;
      setError('summary', null);
      if (data.index !== S.gridIndex) S.gridDirty = true;
    } catch (e) { if (gen === S.gen) setError('summary', e); }
  }

  let gridLoading = null;
  // loadGrid fetches every partition, a page at a time, and redraws the grid.
  async function loadGrid() {
    if (gridLoading) return gridLoading;
    gridLoading = (async () => {
      const gen = S.gen;
      const t0 = performance.now();
      const out = [];
      let after = '', pages = 0, index = 0;
      try {
        for (;;) {
          const q = new URLSearchParams({ consistency: 'stale', limit: String(PAGE) });
          if (after) q.set('after', after);
          const { data } = await api('GET', '/v1/partitions?' + q);
          pages++;
          index = Math.max(index, data.index || 0);
          for (const p of data.partitions || []) out.push(p);
          if (!data.next) break;
          after = data.next;
        }
        const { data: wl } = await api('GET', '/v1/workers?consistency=stale');
        if (gen !== S.gen) return;
        S.workers = wl.workers || [];
        setError('partitions', null);
      } catch (e) {
        if (gen === S.gen) setError('partitions', e);
        return;
      }
      S.gridFetchMs = performance.now() - t0;
      S.gridPages = pages;
      S.gridIndex = index;
      S.gridFetchedAt = Date.now();
      S.gridDirty = false;
      setPartitions(out);
    })();
    try { await gridLoading; } finally { gridLoading = null; }
  }

  function setPartitions(list) {
    S.parts = list;
    S.partIndex = new Map(list.map((p, i) => [p.id, i]));
    if (list.length <= 20000) {
      $('partition-ids').innerHTML = list.length <= 2000 ? list.map((p) => `<option value="${esc(p.id)}">`).join('') : '';
    }
    renderFilters();
    renderGrid();
    renderDetail();
    if (S.view === 'workers') renderWorkers();
  }

  async function loadPlan() {
    const gen = S.gen;
    try {
      const { data } = await api('GET', '/v1/plan');
      if (gen !== S.gen) return;
      S.plan = data; S.planAt = Date.now(); S.planError = null;
      setError('plan', null);
    } catch (e) {
      if (gen !== S.gen) return;
      S.planError = e; setError('plan', e);
    }
    if (S.view === 'workers') renderWorkers();
  }

  async function loadNodes() {
    const gen = S.gen;
    try {
      const { data } = await api('GET', '/v1/cluster/nodes');
      if (gen !== S.gen) return;
      S.nodes = data;
      setError('nodes', null);
    } catch (e) { if (gen === S.gen) setError('nodes', e); }
    if (S.view === 'cluster') renderCluster();
  }

  // The scheduler runs every second: status and summary each time, the grid
  // when the state moved (at most every 2 s unless an audit event asks for
  // it at once), the dry run and the nodes when their view is open.
  let tickN = 0;
  async function tick() {
    tickN++;
    await Promise.all([pollStatus(), pollSummary()]);
    if (S.gridDirty && Date.now() - S.gridFetchedAt > 2000) await loadGrid();
    if (S.view === 'workers' && Date.now() - S.planAt > 5000) await loadPlan();
    if (S.view === 'cluster' && tickN % 2 === 0) await loadNodes();
    if (S.view === 'cluster') renderCluster();
    if (S.view === 'handoffs') renderHandoffs();
    if (S.view === 'workers') renderWorkers();
  }

  async function ticker() {
    for (;;) {
      try { await tick(); } catch (e) { console.error(e); }
      await sleep(1000);
    }
  }

  let refreshTimer = 0;
  // refreshSoon reloads the grid shortly after an ownership event arrives.
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => { loadGrid(); }, 150);
  }

  // ---- audit follow (Server-Sent Events over fetch, for the token) -------

  // follow reads GET /v1/audit/follow with params until signal aborts,
  // reconnecting with backoff and resuming after the last event's id.
  async function follow(params, onEvent, onState, signal) {
    let cursor = '';
    let delay = 500;
    while (!signal.aborted) {
      const conn = new AbortController();
      const stop = () => conn.abort();
      signal.addEventListener('abort', stop);
      let silence = 0;
      const arm = () => { clearTimeout(silence); silence = setTimeout(() => conn.abort(), FOLLOW_SILENCE_MS); };
      try {
        const q = new URLSearchParams(params);
        if (cursor) q.set('after', cursor);
        arm();
        const res = await fetch('/v1/audit/follow?' + q, { headers: headers({ Accept: 'text/event-stream' }), cache: 'no-store', signal: conn.signal });
        if (!res.ok) throw await errorOf(res);
        onState('live', null);
        delay = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          arm();
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let id = '', ev = '', data = '';
            for (const line of block.split('\n')) {
              if (!line || line[0] === ':') continue;
              const c = line.indexOf(':');
              const k = c < 0 ? line : line.slice(0, c);
              let v = c < 0 ? '' : line.slice(c + 1);
              if (v[0] === ' ') v = v.slice(1);
              if (k === 'id') id = v; else if (k === 'event') ev = v; else if (k === 'data') data += (data ? '\n' : '') + v;
            }
            if (ev === 'error') throw new ApiError('follow_error', 0, data);
            if (ev && data) {
              onEvent(JSON.parse(data));
              if (id) cursor = id;
            }
          }
        }
        throw new ApiError('follow_ended', 0, 'the node closed the stream');
      } catch (e) {
        if (signal.aborted) return;
        onState('reconnecting', e.name === 'AbortError' ? new ApiError('follow_silent', 0, 'no keep-alive for 15 s') : e);
      } finally {
        clearTimeout(silence);
        signal.removeEventListener('abort', stop);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  }

  // startFollow loads the newest matching events (desc) and then follows
  // from the index after the newest one.
  async function startFollow(base, backlog, onEvents, onEvent, onState, signal) {
    const q = new URLSearchParams(base);
    q.set('order', 'desc');
    q.set('limit', String(backlog));
    const { data } = await api('GET', '/v1/audit?' + q, { signal });
    const evs = (data.events || []).slice().reverse();
    onEvents(evs);
    const params = new URLSearchParams(base);
    // The newest entry's events are all on the page (a desc page ends at the
    // old end), so following from the next index misses nothing; an empty
    // page means no matching event yet: follow from the start.
    if (evs.length) params.set('from', String(evs[evs.length - 1].index + 1));
    follow(params, onEvent, onState, signal);
  }

  // ---- motion stream: handoffs, worker departures, grid refresh ------------

  function hkey(ev) { return ev.handoff ? 'h' + ev.handoff : null; }

  function handoffRec(key, ev) {
    let h = S.handoffs.get(key);
    if (!h) {
      h = { key, id: ev.handoff || null, partition: ev.partition, from: ev.from || '', to: ev.to || '', reason: '', first: ev.time };
      S.handoffs.set(key, h);
      S.handoffOrder.push(key);
      if (S.handoffOrder.length > MAX_HANDOFFS) {
        const old = S.handoffOrder.shift();
        const o = S.handoffs.get(old);
        S.handoffs.delete(old);
        if (o && o.epoch) S.byPartitionEpoch.delete(o.partition + '@' + o.epoch);
      }
    }
    return h;
  }

  function motionEvent(ev) {
    switch (ev.type) {
      case 'Prepared': {
        const h = handoffRec(hkey(ev) || 'p' + ev.index + '.' + ev.seq, ev);
        h.prepared = ev.time; h.from = ev.from; h.to = ev.to || '(release)'; h.reason = ev.reason || ev.cause || '';
        break;
      }
      case 'Drained': {
        const k = hkey(ev);
        if (k && S.handoffs.has(k)) { const h = S.handoffs.get(k); h.drained = ev.time; h.throughSeq = ev.through_seq; }
        break;
      }
      case 'Committed': {
        const h = handoffRec(hkey(ev) || 'c' + ev.index + '.' + ev.seq, ev);
        h.committed = ev.time; h.to = ev.to; if (ev.from) h.from = ev.from;
        h.epoch = ev.epoch; h.resumeAfter = ev.resume_after;
        if (ev.forced) { h.forced = ev.forced === true ? 'forced' : String(ev.forced); if (!h.reason) h.reason = ev.cause || ''; }
        S.byPartitionEpoch.set(ev.partition + '@' + ev.epoch, h.key);
        break;
      }
      case 'Activated': {
        const k = S.byPartitionEpoch.get(ev.partition + '@' + ev.epoch);
        if (k && S.handoffs.has(k)) S.handoffs.get(k).activated = ev.time;
        break;
      }
      case 'Aborted': {
        const h = handoffRec(hkey(ev) || 'a' + ev.index + '.' + ev.seq, ev);
        h.aborted = ev.time; h.abortReason = ev.reason || ev.cause || '';
        break;
      }
      case 'WorkerLeft':
        S.workerLeft.set(ev.worker, ev);
        break;
      case 'WorkerJoined':
        S.workerLeft.delete(ev.worker);
        break;
    }
  }

  function startMotion() {
    if (S.motion.ctl) S.motion.ctl.abort();
    const ctl = new AbortController();
    S.motion.ctl = ctl;
    const base = new URLSearchParams({ type: MOTION_TYPES.join(',') });
    startFollow(base, MAX_HANDOFFS,
      (evs) => { evs.forEach(motionEvent); if (S.view === 'handoffs') renderHandoffs(); },
      (ev) => { motionEvent(ev); refreshSoon(); if (S.view === 'handoffs') scheduleRender('handoffs', renderHandoffs); },
      (st, err) => { S.motion.state = st; setError('handoff stream', err); renderLive(); },
      ctl.signal,
    ).catch((e) => { setError('handoff stream', e); setTimeout(() => { if (S.motion.ctl === ctl) startMotion(); }, 2000); });
  }

  const pending = new Map();
  function scheduleRender(name, fn) {
    if (pending.has(name)) return;
    pending.set(name, requestAnimationFrame(() => { pending.delete(name); fn(); }));
  }

  // ---- header --------------------------------------------------------------

  function renderHeader() {
    const st = S.status;
    const line = $('node-line');
    if (!st) { line.textContent = 'node unreachable'; renderLive(); return; }
    const leader = st.leader_id ? `leader ${st.leader_id}` : 'no leader';
    line.innerHTML = `node <b id="h-node">${esc(st.node_id)}</b> (${esc(st.state)}) · <span id="h-leader">${esc(leader)}</span> · term ${st.term} · applied ${st.applied_index}` +
      (st.ready ? '' : ` · <span class="bad">not ready: ${esc(st.not_ready)}</span>`);
    renderLive();
  }

  function renderLive() {
    const el = $('live');
    const ok = S.status && S.motion.state === 'live';
    el.className = 'live ' + (ok ? 'ok' : 'bad');
    el.textContent = ok ? 'live' : (S.status ? 'stream ' + (S.motion.state || 'starting') : 'disconnected');
  }

  // ---- ownership grid ------------------------------------------------------

  function renderFilters() {
    const ws = new Set();
    for (const w of S.workers) ws.add(w.id);
    for (const p of S.parts) if (p.owner) ws.add(p.owner);
    const list = Array.from(ws).sort();
    assignColours(list);
    const sel = $('f-worker');
    const cur = sel.value;
    const want = ['', '(none)', ...list].join('\u0000');
    if (sel.dataset.opts !== want) {
      sel.innerHTML = '<option value="">all</option><option value="(none)">unassigned</option>' + list.map((w) => `<option>${esc(w)}</option>`).join('');
      sel.dataset.opts = want;
      sel.value = cur;
    }
    const counts = new Map();
    for (const p of S.parts) counts.set(p.owner, (counts.get(p.owner) || 0) + 1);
    $('legend').innerHTML = list.map((w) => `<span><i class="sw" style="background:${ownerColour(w)}"></i>${esc(w)} (${counts.get(w) || 0})</span>`).join('') +
      `<span><i class="sw" style="background:${ownerColour('')}"></i>unassigned (${counts.get('') || 0})</span>` +
      '<span class="muted">·</span><span><i class="sw" style="background:#8892a0;border-color:#f2c200"></i>preparing</span>' +
      '<span><i class="sw" style="background:#8892a0;border-color:#ff7a00"></i>drained</span>' +
      '<span><i class="sw" style="background:#8892a0;border-color:#fff;box-shadow:inset 0 0 0 3px #8892a0"></i>activating (dot)</span>' +
      '<span><i class="sw" style="background:#8892a0;border-color:#e0245e"></i>orphaned</span>' +
      '<span><i class="sw" style="background:linear-gradient(135deg,#111 40%,#8892a0 40%)"></i>pinned</span>';
  }

  function visible(p) {
    const f = S.filters;
    if (f.worker && (f.worker === '(none)' ? p.owner : p.owner !== f.worker)) return false;
    if (f.phase && (f.phase === 'pinned' ? !p.pinned : p.phase !== f.phase)) return false;
    return true;
  }

  // renderGrid draws every partition as one cell of one canvas: no element
  // or listener per partition, so 10,000 partitions cost one pass of
  // fillRect. The time it takes is measured and shown.
  function renderGrid() {
    const t0 = performance.now();
    const canvas = $('grid');
    const n = S.parts.length;
    const width = Math.max(200, $('grid-box').clientWidth - 12);
    const cell = n <= 256 ? 26 : n <= 1024 ? 16 : n <= 4096 ? 10 : 7;
    const gap = cell >= 10 ? 2 : 1;
    const pitch = cell + gap;
    const cols = Math.max(1, Math.floor((width + gap) / pitch));
    const rows = Math.max(1, Math.ceil(n / cols));
    const height = rows * pitch;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
      canvas.style.width = width + 'px';
      canvas.style.height = height + 'px';
    }
    S.layout = { cell, gap, pitch, cols, rows };
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const filtered = S.filters.worker || S.filters.phase;
    let shown = 0;
    // Cells are drawn grouped by owner and by whether the filter dims them,
    // so that the fill style changes once per group, not once per cell; the
    // phase markers, rare when placement is settled, come in a second pass.
    const groups = new Map();
    const marked = [];
    for (let i = 0; i < n; i++) {
      const p = S.parts[i];
      const on = !filtered || visible(p);
      if (on) shown++;
      const key = (on ? '1' : '0') + p.owner;
      let g = groups.get(key);
      if (!g) { g = { on, owner: p.owner, cells: [] }; groups.set(key, g); }
      g.cells.push(i);
      if (p.phase !== 'active' || p.pinned) marked.push(i);
    }
    for (const g of groups.values()) {
      ctx.globalAlpha = g.on ? 1 : 0.12;
      ctx.fillStyle = ownerColour(g.owner);
      for (const i of g.cells) ctx.fillRect((i % cols) * pitch, Math.floor(i / cols) * pitch, cell, cell);
    }
    for (const i of marked) {
      const p = S.parts[i];
      const x = (i % cols) * pitch, y = Math.floor(i / cols) * pitch;
      ctx.globalAlpha = !filtered || visible(p) ? 1 : 0.12;
      let ring = null;
      switch (p.phase) {
        case 'preparing': ring = '#f2c200'; break;
        case 'drained': ring = '#ff7a00'; break;
        case 'orphaned': ring = '#e0245e'; break;
        case 'activating':
          ctx.fillStyle = '#fff';
          ctx.fillRect(x + cell / 2 - Math.max(1, cell / 6), y + cell / 2 - Math.max(1, cell / 6), Math.max(2, cell / 3), Math.max(2, cell / 3));
          break;
        case 'unassigned':
          if (cell >= 10) { ctx.strokeStyle = '#aab1bb'; ctx.lineWidth = 1; ctx.strokeRect(x + 0.5, y + 0.5, cell - 1, cell - 1); }
          break;
      }
      if (ring) {
        const lw = cell >= 10 ? 3 : 2;
        ctx.strokeStyle = ring; ctx.lineWidth = lw;
        ctx.strokeRect(x + lw / 2, y + lw / 2, cell - lw, cell - lw);
      }
      if (p.pinned) {
        ctx.fillStyle = '#111';
        ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + cell / 2, y); ctx.lineTo(x, y + cell / 2); ctx.closePath(); ctx.fill();
      }
    }
    ctx.globalAlpha = 1;
    const si = S.selected != null ? S.partIndex.get(S.selected) : undefined;
    if (si !== undefined) {
      const x = (si % cols) * pitch, y = Math.floor(si / cols) * pitch;
      ctx.strokeStyle = '#000'; ctx.lineWidth = 2;
      ctx.strokeRect(x - 1, y - 1, cell + 2, cell + 2);
    }
    const ms = performance.now() - t0;
    S.render.ms = ms; S.render.count = n;
    requestAnimationFrame(() => { S.render.frameMs = performance.now() - t0; updateGridStats(shown); });
    updateGridStats(shown);
  }

  function updateGridStats(shown) {
    const el = $('grid-stats');
    const n = S.parts.length;
    el.dataset.count = String(n);
    el.dataset.index = String(S.gridIndex);
    el.dataset.renderMs = S.render.ms == null ? '' : S.render.ms.toFixed(2);
    el.dataset.frameMs = S.render.frameMs == null ? '' : S.render.frameMs.toFixed(2);
    el.dataset.fetchMs = S.gridFetchMs.toFixed(1);
    const f = (S.filters.worker || S.filters.phase) ? ` · ${shown} match the filter` : '';
    el.textContent = `${n} partitions at index ${S.gridIndex}${f} · fetched in ${fmtDur(S.gridFetchMs)} (${S.gridPages} pages) · drawn in ${fmtDur(S.render.ms)}`;
  }

  function cellAt(ev) {
    const L = S.layout;
    if (!L) return -1;
    const r = $('grid').getBoundingClientRect();
    const x = ev.clientX - r.left, y = ev.clientY - r.top;
    const c = Math.floor(x / L.pitch), row = Math.floor(y / L.pitch);
    if (c < 0 || c >= L.cols || row < 0 || x - c * L.pitch > L.cell || y - row * L.pitch > L.cell) return -1;
    const i = row * L.cols + c;
    return i < S.parts.length ? i : -1;
  }

  // cellCenter returns where partition id's cell is drawn, in CSS pixels
  // from the canvas's top left corner.
  function cellCenter(id) {
    const i = S.partIndex.get(id);
    const L = S.layout;
    if (i === undefined || !L) return null;
    return { x: (i % L.cols) * L.pitch + L.cell / 2, y: Math.floor(i / L.cols) * L.pitch + L.cell / 2 };
  }

  function describe(p) {
    let s = `${p.id}\nowner ${p.owner || '(none)'} · ${p.phase}\nepoch ${p.epoch} · resume after ${p.resume_after} · checkpoint ${p.checkpoint}`;
    if (p.pinned) s += `\npinned to ${p.pinned}`;
    const h = p.pending_handoff;
    if (h) s += `\nhandoff h${h.id} ${h.from} → ${h.to || '(release)'}${h.drained ? ' drained through ' + h.through_seq : ''}`;
    return s;
  }

  function onGridMove(ev) {
    const i = cellAt(ev);
    const canvas = $('grid');
    const line = $('hover-line');
    if (i < 0) { canvas.title = ''; line.textContent = ''; return; }
    const p = S.parts[i];
    const text = describe(p);
    canvas.title = text;
    line.textContent = text.replace(/\n/g, ' · ');
  }

  function select(id) {
    if (!S.partIndex.has(id)) {
      setError('find', new ApiError('unknown_partition', 0, `no partition ${id} in the grid`));
      return;
    }
    setError('find', null);
    S.selected = id;
    renderGrid();
    renderDetail();
  }

  function activeWorkers() {
    return S.workers.filter((w) => w.state === 'active' && !w.cordoned).map((w) => w.id).sort();
  }

  function renderDetail() {
    const box = $('detail');
    const i = S.selected != null ? S.partIndex.get(S.selected) : undefined;
    if (i === undefined) return;
    const p = S.parts[i];
    const h = p.pending_handoff;
    const targets = activeWorkers().filter((w) => w !== p.owner);
    const opts = targets.map((w) => `<option>${esc(w)}</option>`).join('');
    const pinOpts = activeWorkers().map((w) => `<option${w === p.pinned ? ' selected' : ''}>${esc(w)}</option>`).join('');
    // Keep what the user typed or chose across refreshes.
    const keep = { to: $('move-to')?.value, reason: $('move-reason')?.value, force: $('move-force')?.checked, pin: $('pin-to')?.value };
    box.innerHTML = `<h3 id="d-id">${esc(p.id)}</h3>
      <dl>
        <dt>owner</dt><dd id="d-owner" data-owner="${esc(p.owner)}"><i class="sw" style="background:${ownerColour(p.owner)}"></i> ${esc(p.owner || '(none)')}</dd>
        <dt>phase</dt><dd id="d-phase">${esc(p.phase)}</dd>
        <dt>epoch</dt><dd id="d-epoch">${p.epoch}</dd>
        <dt>resume after</dt><dd>${p.resume_after}</dd>
        <dt>checkpoint</dt><dd>${p.checkpoint}</dd>
        <dt>weight</dt><dd>${p.weight || 1}</dd>
        <dt>pinned</dt><dd id="d-pinned">${esc(p.pinned || '–')}</dd>
        <dt>subjects</dt><dd>${esc((p.subjects || []).join(' '))}</dd>
        <dt>handoff</dt><dd>${h ? esc(`h${h.id} ${h.from} → ${h.to || '(release)'} ${h.reason || ''}${h.drained ? ', drained through ' + h.through_seq : ''}`) : '–'}</dd>
        <dt>owner since</dt><dd>index ${p.owner_index || '–'}</dd>
      </dl>
      <div class="act"><label>Move to <select id="move-to">${opts}</select></label>
        <label class="check"><input id="move-force" type="checkbox"> force</label></div>
      <div class="act"><input id="move-reason" placeholder="reason (optional)" maxlength="128"><button id="move-btn" type="button">Move…</button></div>
      <div class="act"><label>Pin to <select id="pin-to">${pinOpts}</select></label><button id="pin-btn" type="button">Pin…</button>
        <button id="unpin-btn" type="button"${p.pinned ? '' : ' disabled'}>Unpin…</button></div>`;
    if (keep.to && targets.includes(keep.to)) $('move-to').value = keep.to;
    if (keep.reason) $('move-reason').value = keep.reason;
    if (keep.force) $('move-force').checked = true;
    if (keep.pin && activeWorkers().includes(keep.pin)) $('pin-to').value = keep.pin;
    $('move-btn').onclick = () => {
      const to = $('move-to').value;
      if (!to) { setError('action', new ApiError('invalid_argument', 0, 'no worker to move to')); return; }
      const body = { to };
      if ($('move-force').checked) body.force = true;
      const reason = $('move-reason').value.trim();
      if (reason) body.reason = reason;
      confirmAction(`Move ${p.id} from ${p.owner || '(none)'} to ${to}${body.force ? ' (forced: resumes from the checkpoint)' : ''}`,
        'POST', `/v1/partitions/${encodeURIComponent(p.id)}/move`, body, (res) => `move ${p.id} → ${to} applied at index ${res.index}`);
    };
    $('pin-btn').onclick = () => {
      const w = $('pin-to').value;
      confirmAction(`Pin ${p.id} to ${w}`, 'POST', `/v1/partitions/${encodeURIComponent(p.id)}/pin`, { worker: w },
        (res) => `pin ${p.id} → ${w} applied at index ${res.index}`);
    };
    $('unpin-btn').onclick = () => {
      confirmAction(`Unpin ${p.id}`, 'POST', `/v1/partitions/${encodeURIComponent(p.id)}/pin`, { worker: '' },
        (res) => `unpin ${p.id} applied at index ${res.index}`);
    };
  }

  // ---- operator actions ----------------------------------------------------

  function renderPlan(plan) {
    if (!plan) return '';
    const lines = [];
    if (g(plan, 'rendered')) lines.push(g(plan, 'rendered').trimEnd());
    const moves = g(plan, 'moves') || [];
    if (moves.length && !g(plan, 'rendered')) {
      for (const m of moves) lines.push(`move ${g(m, 'partition')} ${g(m, 'from')} → ${g(m, 'to')}: ${g(m, 'reason')} ${g(m, 'detail') || ''}`);
    }
    const acts = (g(plan, 'actions') || []).filter((a) => g(a, 'action') !== 'hold');
    const held = (g(plan, 'actions') || []).length - acts.length;
    for (const a of acts.slice(0, 50)) lines.push(`${g(a, 'action')} ${g(a, 'partition')}${g(a, 'to') ? ' → ' + g(a, 'to') : ''}: ${g(a, 'reason')} ${g(a, 'detail') || ''}`);
    if (acts.length > 50) lines.push(`… ${acts.length - 50} more actions`);
    if (held) lines.push(`${held} action(s) held back`);
    const pend = g(plan, 'pending') || [];
    if (pend.length) lines.push(`${pend.length} handoff(s) in flight`);
    lines.push(`(at index ${g(plan, 'index')}${g(plan, 'paused') ? ', rebalancing paused' : ''})`);
    return lines.join('\n');
  }

  let confirmRun = null;
  // confirmAction shows the request and the controller's dry run, and sends
  // the request only when the user confirms. Errors stay in the dialog (and
  // in the error bar) with their code and message.
  function confirmAction(title, method, path, body, done) {
    const dlg = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-request').textContent = `${method} ${path}\n${JSON.stringify(body)}`;
    $('confirm-plan').textContent = 'loading the dry run…';
    $('confirm-plan').dataset.loaded = '';
    const errBox = $('confirm-error');
    errBox.hidden = true; errBox.textContent = ''; errBox.dataset.code = '';
    const ok = $('confirm-ok');
    ok.disabled = false;
    const rid = requestId(); // one id per confirmation: a repeat click is deduplicated
    const run = {};
    confirmRun = run;
    api('GET', '/v1/plan').then(({ data }) => {
      if (confirmRun !== run) return;
      $('confirm-plan').textContent = renderPlan(data);
      $('confirm-plan').dataset.loaded = 'plan';
    }, (e) => {
      if (confirmRun !== run) return;
      $('confirm-plan').textContent = 'dry run unavailable: ' + e.toString();
      $('confirm-plan').dataset.loaded = 'error';
    });
    ok.onclick = async () => {
      ok.disabled = true;
      // An answer that leaves the outcome open (no leader during an
      // election, the node busy or unreachable) is retried for a while with
      // the same request id, as the Go client does: the cluster applies the
      // request at most once.
      const deadline = Date.now() + RETRY_WRITES_MS;
      let delay = 250;
      for (;;) {
        try {
          const { data } = await api(method, path, { body, requestId: rid });
          if (confirmRun !== run) return;
          setError('action', null);
          confirmRun = null;
          dlg.close();
          notice(done(data));
          S.planAt = 0;
          refreshSoon();
          return;
        } catch (e) {
          if (confirmRun !== run) return;
          if (RETRYABLE.has(e.code) && Date.now() + delay < deadline) {
            errBox.hidden = false;
            errBox.dataset.code = '';
            errBox.textContent = `retrying (${e.toString()})`;
            await sleep(delay);
            delay = Math.min(2 * delay, 2000);
            continue;
          }
          errBox.hidden = false;
          errBox.dataset.code = e.code || '';
          errBox.textContent = e.toString();
          setError('action', e);
          ok.disabled = false;
          return;
        }
      }
    };
    $('confirm-cancel').onclick = () => { confirmRun = null; dlg.close(); };
    if (!dlg.open) dlg.showModal();
  }

  // ---- audit view ----------------------------------------------------------

  function auditParams() {
    const q = new URLSearchParams();
    const v = (id) => $(id).value.trim();
    if (v('a-partition')) q.set('partition', v('a-partition'));
    if (v('a-worker')) q.set('worker', v('a-worker'));
    if (v('a-handoff')) q.set('handoff', v('a-handoff'));
    if (v('a-type')) q.set('type', v('a-type').replace(/\s+/g, ''));
    const since = v('a-since');
    if (since) {
      const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(since);
      if (m) {
        const mult = { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2]];
        q.set('since', new Date(Date.now() - parseFloat(m[1]) * mult).toISOString());
      } else q.set('since', since);
    }
    return q;
  }

  function startAudit() {
    if (S.audit.ctl) S.audit.ctl.abort();
    const ctl = new AbortController();
    S.audit.ctl = ctl;
    S.audit.rows = [];
    S.audit.paused = false;
    $('a-pause').textContent = 'Pause';
    renderAudit();
    const base = auditParams();
    startFollow(base, 200,
      (evs) => { for (const ev of evs) addAuditRow(ev); renderAudit(); },
      (ev) => { addAuditRow(ev); if (!S.audit.paused) scheduleRender('audit', renderAudit); },
      (st, err) => { S.audit.state = st; setError('audit stream', err); renderAuditState(); },
      ctl.signal,
    ).catch((e) => { S.audit.state = 'error'; setError('audit stream', e); renderAuditState(); });
  }

  function addAuditRow(ev) {
    S.audit.rows.push(ev);
    if (S.audit.rows.length > MAX_AUDIT_ROWS * 2) S.audit.rows.splice(0, S.audit.rows.length - MAX_AUDIT_ROWS);
  }

  function renderAuditState() {
    $('audit-state').textContent = S.audit.paused ? 'paused' : S.audit.state === 'live' ? 'following' : (S.audit.state || '');
  }

  const SHOWN = new Set(['index', 'seq', 'term', 'time', 'at', 'actor', 'cause', 'request_id', 'type', 'partition', 'worker', 'from', 'to', 'epoch', 'handoff']);
  function auditRow(ev) {
    const who = ev.worker || (ev.from || ev.to ? `${ev.from || ''} → ${ev.to || ''}` : '');
    const rest = {};
    for (const k of Object.keys(ev)) if (!SHOWN.has(k)) rest[k] = ev[k];
    let details = JSON.stringify(rest);
    if (details === '{}') details = '';
    if (details.length > 200) details = details.slice(0, 200) + '…';
    const forced = ev.type === 'Committed' && ev.forced ? ` <span class="badge forced">forced ${esc(ev.forced === true ? '' : ev.forced)}</span>` : '';
    return `<tr data-type="${esc(ev.type)}" data-partition="${esc(ev.partition || '')}"><td>${ev.index}</td><td>${fmtTime(ev.at)}</td><td><span class="badge ${esc(ev.type)}">${esc(ev.type)}</span>${forced}</td>` +
      `<td>${esc(ev.partition || '')}</td><td>${esc(who)}</td><td>${ev.epoch ?? ''}</td><td>${ev.handoff ? 'h' + ev.handoff : ''}</td>` +
      `<td>${esc(details)}</td><td>${esc(ev.actor || '')}</td><td>${esc(ev.cause || '')}</td></tr>`;
  }

  function renderAudit() {
    renderAuditState();
    if (S.audit.paused) return;
    const hideCp = $('a-hide-cp').checked;
    const out = [];
    for (let i = S.audit.rows.length - 1; i >= 0 && out.length < MAX_AUDIT_ROWS; i--) {
      const ev = S.audit.rows[i];
      if (hideCp && ev.type === 'Checkpointed') continue;
      out.push(auditRow(ev));
    }
    $('audit-rows').innerHTML = out.join('') || '<tr><td colspan="10" class="muted">no matching event yet</td></tr>';
  }

  // ---- handoff timeline ----------------------------------------------------

  function renderHandoffs() {
    const n = parseInt($('h-last').value, 10) || 50;
    const keys = S.handoffOrder.slice(-n).reverse();
    const now = Date.now() * 1e6;
    const rows = keys.map((k) => S.handoffs.get(k)).filter(Boolean);
    const phases = { prep: [], drain: [], act: [], total: [] };
    for (const h of rows) {
      if (h.aborted) continue;
      if (h.prepared && h.drained) phases.prep.push(nsToMs(h.drained - h.prepared));
      if (h.drained && h.committed) phases.drain.push(nsToMs(h.committed - h.drained));
      if (h.committed && h.activated) phases.act.push(nsToMs(h.activated - h.committed));
      if (h.prepared && h.activated) phases.total.push(nsToMs(h.activated - h.prepared));
    }
    const stat = (name, list) => {
      const s = list.slice().sort((a, b) => a - b);
      return `<div class="stat" data-phase="${name}">${name}<b>p50 ${fmtDur(percentile(s, 0.5))} · p99 ${fmtDur(percentile(s, 0.99))}</b><span class="muted">${s.length} handoffs</span></div>`;
    };
    const forced = rows.filter((h) => h.forced).length, aborted = rows.filter((h) => h.aborted).length;
    $('h-stats').innerHTML = stat('prepare→drain', phases.prep) + stat('drain→commit', phases.drain) + stat('commit→activate', phases.act) +
      stat('prepare→active', phases.total) + `<div class="stat">last ${rows.length}<b>${forced} forced · ${aborted} aborted</b><span class="muted">of ${S.handoffOrder.length} seen</span></div>`;
    let scale = 1;
    for (const h of rows) {
      const start = h.prepared || h.committed || h.first;
      const end = h.activated || h.aborted || (h.committed && !h.activated ? now : 0) || now;
      scale = Math.max(scale, nsToMs(end - start));
    }
    const pct = (ms) => Math.max(0, Math.min(100, (ms / scale) * 100)).toFixed(2) + '%';
    $('h-rows').innerHTML = rows.map((h) => {
      const segs = [];
      const start = h.prepared || h.committed;
      if (h.prepared) segs.push(['prep', h.prepared, h.drained || (h.committed && !h.drained ? h.committed : 0) || h.aborted || now]);
      if (h.drained) segs.push(['drain', h.drained, h.committed || h.aborted || now]);
      if (h.committed) segs.push([h.forced ? 'forced' : 'act', h.committed, h.activated || now]);
      if (h.aborted) segs.push(['aborted', h.aborted, h.aborted + scale * 1e6 * 0.01]);
      const bar = segs.map(([cls, a, b]) => `<i class="seg ${cls}" style="width:${pct(nsToMs(b - a))}" title="${esc(cls)} ${fmtDur(nsToMs(b - a))}"></i>`).join('');
      const end = h.activated || h.aborted;
      const total = end && start ? fmtDur(nsToMs(end - start)) : (start ? 'in flight ' + fmtDur(nsToMs(now - start)) : '–');
      let outcome = '<span class="ok">activated</span>';
      if (h.aborted) outcome = `<span class="bad">aborted: ${esc(h.abortReason)}</span>`;
      else if (h.forced) outcome = `<span class="bad">forced: ${esc(h.forced)}</span>${h.activated ? '' : ' (not active yet)'}`;
      else if (!h.activated) outcome = `<span class="warn">${h.committed ? 'committed' : h.drained ? 'drained' : 'preparing'}</span>`;
      const title = [h.prepared && 'prepare→drain ' + fmtDur(nsToMs((h.drained || now) - h.prepared)),
        h.drained && 'drain→commit ' + fmtDur(nsToMs((h.committed || now) - h.drained)),
        h.committed && 'commit→activate ' + fmtDur(nsToMs((h.activated || now) - h.committed))].filter(Boolean).join(', ');
      return `<tr data-handoff="${esc(h.key)}" data-partition="${esc(h.partition)}" data-complete="${h.activated ? 1 : 0}"><td>${esc(h.id ? 'h' + h.id : '–')}</td><td>${esc(h.partition)}</td>` +
        `<td>${esc(h.from || '–')} → ${esc(h.to || '–')}</td><td>${esc(h.reason)}</td><td><div class="bar" title="${esc(title)}">${bar}</div></td>` +
        `<td>${total}</td><td>${outcome}</td></tr>`;
    }).join('') || '<tr><td colspan="7" class="muted">no handoff yet</td></tr>';
  }

  // ---- workers -------------------------------------------------------------

  function renderWorkers() {
    const plan = S.plan;
    const loads = new Map();
    for (const wl of g(plan, 'workers') || []) loads.set(g(wl, 'worker'), wl);
    const owned = new Map(), weight = new Map(), moving = new Map(), orphaned = new Map();
    for (const p of S.parts) {
      if (!p.owner) continue;
      owned.set(p.owner, (owned.get(p.owner) || 0) + 1);
      weight.set(p.owner, (weight.get(p.owner) || 0) + (p.weight || 1));
      if (p.phase === 'orphaned') orphaned.set(p.owner, (orphaned.get(p.owner) || 0) + 1);
      else if (p.phase !== 'active') moving.set(p.owner, (moving.get(p.owner) || 0) + 1);
    }
    const paused = S.summary ? !!S.summary.paused : (plan ? !!g(plan, 'paused') : false);
    $('rebalance-state').innerHTML = `Rebalancing: <b id="rebalance-paused">${paused ? 'paused' : 'running'}</b>`;
    const btn = $('rebalance-btn');
    btn.textContent = paused ? 'Resume rebalancing…' : 'Pause rebalancing…';
    btn.onclick = () => confirmAction(paused ? 'Resume voluntary rebalancing' : 'Pause voluntary rebalancing', 'POST', '/v1/rebalance',
      { paused: !paused }, (res) => `rebalancing ${paused ? 'resumed' : 'paused'} at index ${res.index}`);
    $('plan-state').textContent = S.planError ? 'dry run: ' + S.planError.toString() : plan ? `dry run at index ${g(plan, 'index')}, imbalance ${(+g(plan, 'imbalance') || 0).toFixed(3)}` : 'loading the dry run…';
    $('plan-text').textContent = plan ? renderPlan(plan) : '';
    const now = Date.now();
    $('w-rows').innerHTML = S.workers.slice().sort((a, b) => a.id.localeCompare(b.id)).map((w) => {
      const wl = loads.get(w.id);
      const load = weight.get(w.id) || 0;
      const fair = wl ? +g(wl, 'fair') : NaN;
      const lower = wl ? g(wl, 'lower') : undefined, upper = wl ? g(wl, 'upper') : undefined;
      const maxv = Math.max(load, isFinite(fair) ? fair : 0, upper || 0, 1) * 1.15;
      const bar = `<span class="loadbar" title="load ${load}, fair share ${isFinite(fair) ? fair.toFixed(1) : '?'}"><i style="width:${(load / maxv * 100).toFixed(1)}%"></i>` +
        (isFinite(fair) ? `<b style="left:${(fair / maxv * 100).toFixed(1)}%"></b>` : '') + '</span>';
      const fairText = isFinite(fair) ? `${load} / ${fair.toFixed(1)}${upper !== undefined ? ` [${lower}–${upper}]` : ''}${wl && !g(wl, 'eligible') ? ' ineligible' : ''}` : `${load} / –`;
      const left = S.workerLeft.get(w.id);
      let health;
      if (w.state === 'gone') {
        health = left && left.reason === 'expired' ? '<span class="bad">session expired: fenced itself</span>' : `<span class="muted">gone${left ? ' (' + esc(left.reason) + ')' : ''}</span>`;
        if (orphaned.get(w.id)) health += ` <span class="bad">${orphaned.get(w.id)} orphaned</span>`;
      } else if (w.state === 'leaving') health = '<span class="warn">leaving: handing off</span>';
      else if (moving.get(w.id)) health = `<span class="warn">${moving.get(w.id)} partition(s) moving</span>`;
      else health = '<span class="ok">ok</span>';
      const labels = (w.labels || []).map((l) => `${esc(l.key)}=${esc(l.value)}`).join(' ');
      const action = w.state === 'gone' ? '' : w.cordoned
        ? `<button data-undrain="${esc(w.id)}" type="button">Undrain…</button>`
        : `<button data-drain="${esc(w.id)}" type="button" class="danger">Drain…</button>`;
      return `<tr data-worker="${esc(w.id)}"><td><i class="sw" style="background:${ownerColour(w.id)}"></i> ${esc(w.id)}</td><td>${esc(w.state)}</td><td>${w.incarnation}</td>` +
        `<td>${w.weight || 1}</td><td>${labels}</td><td>${owned.get(w.id) || 0}</td><td>${bar}${fairText}</td>` +
        `<td>${w.joined_time ? fmtDur(now - w.joined_time / 1e6) : '–'}</td><td data-cordoned="${w.cordoned ? 1 : 0}">${w.cordoned ? '<b class="warn">cordoned</b>' : 'no'}</td><td>${health}</td><td>${action}</td></tr>`;
    }).join('') || '<tr><td colspan="11" class="muted">no worker registered</td></tr>';
  }

  function onWorkersClick(ev) {
    const b = ev.target.closest('button');
    if (!b) return;
    const drain = b.dataset.drain, undrain = b.dataset.undrain;
    if (drain) {
      confirmAction(`Drain ${drain} for maintenance: move its partitions off, give it nothing new`, 'POST',
        `/v1/workers/${encodeURIComponent(drain)}/cordon`, { on: true }, (res) => `drain ${drain} applied at index ${res.index}`);
    } else if (undrain) {
      confirmAction(`Undrain ${undrain}: it may receive partitions again`, 'POST',
        `/v1/workers/${encodeURIComponent(undrain)}/cordon`, { on: false }, (res) => `undrain ${undrain} applied at index ${res.index}`);
    }
  }

  // ---- cluster -------------------------------------------------------------

  function renderCluster() {
    const sum = S.summary;
    const st = S.status;
    let html = '';
    if (st) html += `<div class="stat">this page talks to<b id="c-self">${esc(st.node_id)}</b><span class="muted">${esc(st.state)}</span></div>` +
      `<div class="stat">leader<b id="c-leader">${esc(st.leader_id || 'none')}</b><span class="muted">term ${st.term}</span></div>`;
    if (sum) {
      const byPhase = PHASES.filter((ph) => (sum.partitions_by_phase || {})[ph]).map((ph) => `${ph} ${sum.partitions_by_phase[ph]}`).join(' · ');
      const byState = Object.entries(sum.workers || {}).map(([k, v]) => `${k} ${v}`).join(' · ');
      html += `<div class="stat">partitions<b>${sum.partitions}</b><span class="muted">${esc(byPhase)}</span></div>` +
        `<div class="stat">workers<b>${Object.values(sum.workers || {}).reduce((a, b) => a + b, 0)}</b><span class="muted">${esc(byState)}${sum.cordoned ? ' · cordoned ' + sum.cordoned : ''}</span></div>` +
        `<div class="stat">handoffs pending<b>${sum.handoffs}</b><span class="muted">rebalancing ${sum.paused ? 'paused' : 'running'}</span></div>`;
    }
    $('c-summary').innerHTML = html;
    const nodes = S.nodes ? S.nodes.nodes || [] : [];
    $('c-rows').innerHTML = nodes.map((n) => {
      const s = n.status;
      if (!s) return `<tr data-node="${esc(n.id)}" data-state="unreachable"><td>${esc(n.id)}</td><td>${esc(n.api_addr)}</td><td colspan="9" class="bad">${esc(n.error ? `${n.error.code} (${n.error.status}): ${n.error.message}` : 'no answer')}</td></tr>`;
      const d = (s.digests || [])[(s.digests || []).length - 1];
      return `<tr data-node="${esc(n.id)}" data-state="${esc(s.state)}"><td>${esc(n.id)}${s.node_id === s.leader_id ? ' ★' : ''}</td><td>${esc(n.api_addr)}</td><td>${esc(s.state)}</td><td>${s.term}</td>` +
        `<td>${s.commit_index}</td><td data-applied="${s.applied_index}">${s.applied_index}</td><td>${s.last_log_index}</td><td>${s.last_snapshot_index}</td>` +
        `<td>${s.ready ? '<span class="ok">ready</span>' : `<span class="bad">${esc(s.not_ready || 'not ready')}</span>`}</td>` +
        `<td>${d ? `${d.index}: ${esc(d.digest.slice(0, 12))}` : '–'}</td><td>${n.took_ms} ms</td></tr>`;
    }).join('') || '<tr><td colspan="11" class="muted">loading…</td></tr>';
    let dg = '';
    if (st) {
      if (st.divergence && st.divergence.length) {
        dg = '<div class="error" id="c-digest-result" data-result="diverged"><b>State divergence detected.</b> ' + st.divergence.map((d) =>
          `${esc(d.node)} at index ${d.index}: ${esc(d.digest.slice(0, 16))}${d.majority_digest ? ', majority ' + esc(d.majority_digest.slice(0, 16)) : ''}`).join('; ') + '</div>';
      } else if (st.digest_checked_index) {
        dg = `<p id="c-digest-result" data-result="agree" class="ok">Corruption check: every compared node agreed at index ${st.digest_checked_index} (checked by ${esc(st.node_id)}).</p>`;
      } else {
        dg = `<p id="c-digest-result" data-result="none" class="muted">Corruption check: ${esc(st.node_id)} has not compared digests yet.</p>`;
      }
    }
    $('c-digest').innerHTML = dg;
  }

  // ---- navigation and wiring -----------------------------------------------

  function show(view) {
    if (!['grid', 'audit', 'handoffs', 'workers', 'cluster'].includes(view)) view = 'grid';
    S.view = view;
    for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.view === view);
    for (const sec of document.querySelectorAll('.view')) sec.hidden = sec.id !== 'view-' + view;
    if (location.hash !== '#' + view) history.replaceState(null, '', '#' + view);
    if (view === 'grid') renderGrid();
    if (view === 'audit' && !S.audit.ctl) startAudit();
    if (view === 'handoffs') renderHandoffs();
    if (view === 'workers') { renderWorkers(); loadPlan(); }
    if (view === 'cluster') { renderCluster(); loadNodes(); }
  }

  function restart() {
    // A new token may see what the old one could not: start over.
    S.gen++;
    S.gridIndex = -1; S.gridDirty = true; S.gridFetchedAt = 0; S.planAt = 0;
    S.handoffs.clear(); S.handoffOrder = []; S.byPartitionEpoch.clear(); S.workerLeft.clear();
    for (const k of Array.from(S.errors.keys())) setError(k, null);
    startMotion();
    if (S.audit.ctl) startAudit();
    pollStatus();
    pollSummary();
    loadGrid();
    if (S.view === 'workers') loadPlan();
    if (S.view === 'cluster') loadNodes();
  }

  function init() {
    $('f-phase').innerHTML = '<option value="">all</option>' + PHASES.map((p) => `<option>${p}</option>`).join('') + '<option value="pinned">pinned</option>';
    $('event-types').innerHTML = EVENT_TYPES.map((t) => `<option value="${t}">`).join('');
    $('token').value = token();
    $('token-state').textContent = token() ? 'token set for this tab' : 'no token';
    $('token-form').onsubmit = (e) => {
      e.preventDefault();
      const t = $('token').value.trim();
      if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
      $('token-state').textContent = t ? 'token set for this tab' : 'no token';
      restart();
    };
    $('token-forget').onclick = () => {
      sessionStorage.removeItem(TOKEN_KEY);
      $('token').value = '';
      $('token-state').textContent = 'no token';
      restart();
    };
    for (const b of document.querySelectorAll('#tabs button')) b.onclick = () => show(b.dataset.view);
    $('f-worker').onchange = () => { S.filters.worker = $('f-worker').value; renderGrid(); };
    $('f-phase').onchange = () => { S.filters.phase = $('f-phase').value; renderGrid(); };
    $('find-go').onclick = () => select($('find').value.trim());
    $('find').onkeydown = (e) => { if (e.key === 'Enter') { e.preventDefault(); select($('find').value.trim()); } };
    const canvas = $('grid');
    canvas.addEventListener('mousemove', onGridMove);
    canvas.addEventListener('mouseleave', () => { $('hover-line').textContent = ''; });
    canvas.addEventListener('click', (ev) => { const i = cellAt(ev); if (i >= 0) select(S.parts[i].id); });
    $('audit-form').onsubmit = (e) => { e.preventDefault(); startAudit(); };
    $('a-hide-cp').onchange = () => renderAudit();
    $('a-pause').onclick = () => {
      S.audit.paused = !S.audit.paused;
      $('a-pause').textContent = S.audit.paused ? 'Resume' : 'Pause';
      renderAudit();
    };
    $('h-last').onchange = () => renderHandoffs();
    $('w-rows').addEventListener('click', onWorkersClick);
    let resizeTimer = 0;
    window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(renderGrid, 100); });
    window.addEventListener('hashchange', () => show(location.hash.slice(1)));
    // For tests and the curious: the last grid render's figures.
    window.batonConsole = { render: S.render, select, cellCenter };
    show(location.hash.slice(1) || 'grid');
    startMotion();
    loadGrid();
    ticker();
  }

  init();
})();
