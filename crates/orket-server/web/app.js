// The Orket web board: runs, their backlog as Kanban columns, the timeline of turns, live
// events, approvals and host metrics, all from the HTTP API of `orket serve` and kept current
// over the WebSocket of events. No framework and no build step. Every text that comes from the
// server is inserted as a text node (never as HTML).
'use strict';

(() => {
  // Issue statuses in lifecycle order (docs/lifecycle.md); the first set is always shown as columns,
  // the others only while they hold cards.
  const STATUSES = [
    'ready', 'in_progress', 'blocked', 'waiting_for_developer', 'ready_for_testing',
    'code_review', 'done', 'canceled', 'archived',
  ];
  const ALWAYS_SHOWN = new Set([
    'ready', 'in_progress', 'blocked', 'waiting_for_developer', 'code_review', 'done',
  ]);
  const STATUS_LABELS = {
    ready: 'Ready',
    in_progress: 'In progress',
    blocked: 'Blocked',
    waiting_for_developer: 'Waiting for developer',
    ready_for_testing: 'Ready for testing',
    code_review: 'Code review',
    done: 'Done',
    canceled: 'Canceled',
    archived: 'Archived',
  };
  const KEY_STORAGE = 'orket.api_key';
  const METRICS_EVERY_MS = 3000;
  const MAX_EVENTS = 300;

  const state = {
    key: null,
    authBlocked: false,
    runs: [],
    selected: null, // the run id shown
    pendingSelected: false, // selected but not listed by the server yet
    followNewest: true, // select the newest run when the run list changes
    issues: new Map(), // issue id -> backlog item of the selected run's build
    prs: new Map(), // card id -> its Gitea pull request (GET /v1/prs), the most recent
    cards: new Map(), // issue id -> card element
    columns: new Map(), // status -> {section, list, count}
    events: [], // newest last
    chat: [], // the operations-lead conversation: {role, content}
    ws: null,
    wsAttempt: 0,
    wsTimer: null,
    errors: new Map(),
    timers: new Map(),
  };

  const $ = (id) => document.getElementById(id);

  // ---- DOM helpers -------------------------------------------------------------------------

  /** An element with attributes and children; strings become text nodes. */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    if (props) {
      for (const [name, value] of Object.entries(props)) {
        if (value === null || value === undefined || value === false) continue;
        if (name === 'class') el.className = value;
        else if (name === 'testid') el.setAttribute('data-testid', value);
        else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
        else el.setAttribute(name, value === true ? '' : String(value));
      }
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  function label(status) {
    return STATUS_LABELS[status] || String(status);
  }

  function time(ts) {
    if (!ts) return '';
    const d = new Date(ts);
    if (Number.isNaN(d.getTime())) return String(ts);
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  }

  function dateTime(ts) {
    if (!ts) return '';
    const d = new Date(ts);
    if (Number.isNaN(d.getTime())) return String(ts);
    const today = new Date();
    const sameDay = d.toDateString() === today.toDateString();
    return sameDay ? time(ts) : `${d.toLocaleDateString()} ${time(ts)}`;
  }

  function duration(from, to) {
    const a = Date.parse(from);
    const b = Date.parse(to);
    if (Number.isNaN(a) || Number.isNaN(b) || b < a) return '';
    const ms = b - a;
    if (ms < 1000) return `${ms} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
    const m = Math.floor(ms / 60000);
    return `${m} min ${Math.round((ms % 60000) / 1000)} s`;
  }

  function compact(value, max = 160) {
    let text;
    if (typeof value === 'string') text = value;
    else {
      try {
        text = JSON.stringify(value);
      } catch {
        text = String(value);
      }
    }
    if (text === undefined) text = '';
    text = text.replace(/\s+/g, ' ').trim();
    return text.length > max ? `${text.slice(0, max - 1)}…` : text;
  }

  function priorityText(p) {
    const n = Number(p);
    if (n === 3) return 'High';
    if (n === 2) return 'Medium';
    if (n === 1) return 'Low';
    return Number.isFinite(n) ? `P${n}` : String(p);
  }

  function priorityClass(p) {
    const n = Number(p);
    if (n >= 3) return 'prio-high';
    if (n <= 1) return 'prio-low';
    return 'prio-medium';
  }

  function announce(text) {
    $('announce').textContent = text;
  }

  // ---- errors and the API key ----------------------------------------------------------------

  function setError(where, message) {
    if (message) state.errors.set(where, message);
    else state.errors.delete(where);
    const banner = $('error-banner');
    banner.replaceChildren(...[...state.errors.values()].map((m) => h('p', null, m)));
    banner.hidden = state.errors.size === 0;
  }

  function readStoredKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE);
    } catch {
      return null;
    }
  }

  function storeKey(key) {
    state.key = key || null;
    try {
      if (key) sessionStorage.setItem(KEY_STORAGE, key);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      // Storage may be disabled; the key then lasts as long as the page.
    }
  }

  /** Takes `?api_key=` from the address into session storage and out of the address bar. */
  function initKey() {
    const url = new URL(window.location.href);
    const fromUrl = url.searchParams.get('api_key');
    if (fromUrl !== null) {
      storeKey(fromUrl);
      url.searchParams.delete('api_key');
      window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
    } else {
      state.key = readStoredKey();
    }
  }

  function showAuth(status, serverMessage) {
    state.authBlocked = true;
    const banner = $('auth-banner');
    const text = status === 403 || state.key
      ? 'The API key was refused: it is not this server’s key. Enter the right one (the value of ORKET_API_KEY).'
      : 'This server needs an API key: open the board with ?api_key=<key> in the address, or enter it here.';
    $('auth-message').replaceChildren(
      text,
      serverMessage ? h('span', { class: 'server-says' }, ` Server: ${serverMessage}`) : null,
    );
    banner.dataset.status = String(status);
    if (banner.hidden) {
      banner.hidden = false;
      $('auth-key').focus();
    }
  }

  function authOk() {
    if (!state.authBlocked) return;
    state.authBlocked = false;
    $('auth-banner').hidden = true;
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** Calls the API with the key; JSON in, JSON out; errors carry the server's message. */
  async function api(path, { method = 'GET', body } = {}) {
    const headers = { Accept: 'application/json' };
    if (state.key) headers['X-API-Key'] = state.key;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, `The server cannot be reached (${e.message}).`);
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    const serverMessage = data && typeof data.error === 'string' ? data.error : null;
    if (res.status === 401 || res.status === 403) {
      showAuth(res.status, serverMessage);
      throw new ApiError(res.status, res.status === 401 ? 'API key required' : 'API key wrong');
    }
    if (!res.ok) {
      throw new ApiError(res.status, serverMessage || `${method} ${path}: HTTP ${res.status}`);
    }
    authOk();
    return data;
  }

  /** Runs `fn` once `delay` ms after the last request for `name` (coalesces bursts of events). */
  function schedule(name, fn, delay = 150) {
    clearTimeout(state.timers.get(name));
    state.timers.set(name, setTimeout(() => {
      state.timers.delete(name);
      fn();
    }, delay));
  }

  /** Loads with error reporting: a failure shows in the banner until the next success. */
  async function guarded(where, fn) {
    try {
      await fn();
      setError(where, null);
    } catch (e) {
      if (e.status === 401 || e.status === 403) return; // the key banner says it
      // A run just started is selected before the server lists it: not found yet is no error.
      if (e.status === 404 && state.selected && !selectedRun()) return;
      setError(where, `${where}: ${e.message}`);
    }
  }

  // ---- runs -------------------------------------------------------------------------------

  function selectedRun() {
    return state.runs.find((r) => r.id === state.selected) || null;
  }

  async function loadRuns() {
    await guarded('Runs', async () => {
      const runs = await api('/v1/runs');
      state.runs = Array.isArray(runs) ? runs : [];
      // Follow the newest run unless a run was picked; a run just started may not be listed
      // yet, and stays selected meanwhile.
      const listed = state.runs.some((r) => r.id === state.selected);
      if (listed && state.pendingSelected) {
        state.pendingSelected = false;
        loadSelected();
      }
      if (state.runs.length && state.runs[0].id !== state.selected
        && (!state.selected || (state.followNewest && listed))) {
        select(state.runs[0].id, { follow: true });
      }
      renderRuns();
      renderRunHead();
    });
  }

  function runItem(run) {
    const done = run.progress ? Number(run.progress.done) || 0 : 0;
    const total = run.progress ? Number(run.progress.total) || 0 : 0;
    const current = run.id === state.selected;
    return h('li', null,
      h('button', {
        type: 'button',
        class: `run-item${current ? ' current' : ''}`,
        testid: `run-${run.id}`,
        'aria-current': current ? 'true' : null,
        'data-run-id': run.id,
        'data-status': run.status,
        onclick: () => select(run.id, { follow: state.runs.length > 0 && state.runs[0].id === run.id }),
      },
      h('span', { class: 'run-line' },
        h('span', { class: 'run-target' }, run.target),
        h('span', { class: `badge status-${run.status}` }, run.status)),
      h('span', { class: 'run-line run-sub' },
        h('span', null, `${run.kind} · ${run.id}`),
        h('span', null, dateTime(run.started_at))),
      h('span', { class: 'run-line' },
        h('progress', { max: total || 1, value: done, 'aria-label': `${done} of ${total} issues finished` }),
        h('span', { class: 'run-progress', testid: `run-progress-${run.id}` }, `${done}/${total}`))));
  }

  function renderRuns() {
    const list = $('run-list');
    const focused = document.activeElement && list.contains(document.activeElement)
      ? document.activeElement.getAttribute('data-run-id')
      : null;
    list.replaceChildren(...state.runs.map(runItem));
    $('runs-empty').hidden = state.runs.length > 0;
    if (focused) {
      const again = list.querySelector(`[data-run-id="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  }

  function renderRunHead() {
    const run = selectedRun();
    const halt = $('halt');
    const badge = $('run-status');
    if (!run) {
      $('run-title').textContent = state.selected ? `Run ${state.selected}` : 'No run selected';
      $('run-meta').textContent = state.selected ? 'starting…' : 'Start a run, or pick one from the list.';
      $('run-reason').hidden = true;
      badge.hidden = true;
      halt.disabled = true;
      return;
    }
    const done = run.progress ? run.progress.done : 0;
    const total = run.progress ? run.progress.total : 0;
    $('run-title').replaceChildren(
      h('span', null, run.target),
      h('span', { class: 'kind' }, ` ${run.kind}`),
    );
    const parts = [
      `run ${run.id}`,
      `build ${run.build_id}`,
      `department ${run.department}`,
      `${done}/${total} finished`,
      `started ${dateTime(run.started_at)}`,
    ];
    if (run.ended_at) parts.push(`took ${duration(run.started_at, run.ended_at)}`);
    $('run-meta').textContent = parts.join(' · ');
    $('run-meta').title = run.workspace ? `workspace ${run.workspace}` : '';
    const reason = $('run-reason');
    reason.hidden = !run.reason;
    reason.textContent = run.reason || '';
    badge.hidden = false;
    badge.textContent = run.status;
    badge.className = `badge status-${run.status}`;
    if (!halt.dataset.busy) halt.disabled = !(run.status === 'running' && run.active !== false);
  }

  function select(id, { follow = false } = {}) {
    state.followNewest = follow;
    if (state.selected === id) {
      renderRuns();
      return;
    }
    state.selected = id;
    $('kanban').dataset.runId = id;
    state.issues.clear();
    for (const el of state.cards.values()) el.remove();
    state.cards.clear();
    updateColumns();
    $('timeline').replaceChildren();
    $('run-roles').replaceChildren();
    $('timeline-empty').hidden = false;
    $('approvals').replaceChildren();
    renderRuns();
    renderRunHead();
    renderEvents();
    // A run just started is not listed until the server has created it: its details are
    // loaded once the run list (or one of its events) shows it.
    state.pendingSelected = !selectedRun();
    if (!state.pendingSelected) loadSelected();
  }

  function loadSelected() {
    loadBacklog();
    loadSession();
    loadApprovals();
  }

  async function halt() {
    const run = selectedRun();
    if (!run) return;
    const button = $('halt');
    button.disabled = true;
    button.dataset.busy = '1';
    button.textContent = 'Halting…';
    try {
      await api(`/v1/runs/${encodeURIComponent(run.id)}/halt`, { method: 'POST', body: {} });
      announce(`Halt requested for run ${run.id}`);
      setError('Halt', null);
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) setError('Halt', `Halt: ${e.message}`);
    } finally {
      delete button.dataset.busy;
      button.textContent = 'Halt';
      schedule('runs', loadRuns, 0);
    }
  }

  // ---- the Kanban board -------------------------------------------------------------------

  function column(status) {
    let col = state.columns.get(status);
    if (col) return col;
    const count = h('span', { class: 'count', 'aria-label': 'cards' }, '0');
    const list = h('ol', { class: 'cards' });
    const section = h('section', {
      class: `column col-${status}`,
      testid: `column-${status}`,
      'data-status': status,
      'aria-label': label(status),
    }, h('h3', null, h('span', { class: 'col-dot', 'aria-hidden': 'true' }), label(status), count), list);
    col = { section, list, count };
    state.columns.set(status, col);
    // Keep lifecycle order; an unknown status goes last.
    const order = (s) => {
      const i = STATUSES.indexOf(s);
      return i < 0 ? STATUSES.length : i;
    };
    const kanban = $('kanban');
    const after = [...kanban.children].find((c) => order(c.dataset.status) > order(status));
    kanban.insertBefore(section, after || null);
    return col;
  }

  function updateColumns() {
    for (const [status, col] of state.columns) {
      const n = col.list.children.length;
      col.count.textContent = String(n);
      col.section.hidden = n === 0 && !ALWAYS_SHOWN.has(status);
    }
    // Without a run, the run header says what to do.
    const empty = $('kanban-empty');
    empty.hidden = !state.selected || state.issues.size > 0;
    empty.textContent = 'No issues on this run’s board yet.';
  }

  function verificationText(v) {
    const last = v && typeof v === 'object' ? v.last_run : null;
    if (!last || typeof last !== 'object') return null;
    let passed = Number.isFinite(last.passed) ? last.passed : null;
    let failed = Number.isFinite(last.failed) ? last.failed : null;
    if ((passed === null || failed === null) && Array.isArray(last.results)) {
      const ok = (r) => r && (r.passed === true || ['passed', 'pass', 'ok', 'success'].includes(r.status));
      passed = last.results.filter(ok).length;
      failed = last.results.length - passed;
    }
    if (passed === null && failed === null) return null;
    return { passed: passed || 0, failed: failed || 0 };
  }

  function fillCard(el, issue) {
    const deps = Array.isArray(issue.depends_on) ? issue.depends_on : [];
    const meta = [];
    meta.push(h('li', { title: 'seat' }, h('span', { class: 'k' }, 'seat'), ` ${issue.seat || '—'}`));
    if (issue.assignee) meta.push(h('li', { title: 'assignee' }, h('span', { class: 'k' }, 'by'), ` ${issue.assignee}`));
    if (deps.length) {
      meta.push(h('li', { class: 'deps' }, h('span', { class: 'k' }, 'after'), ' ',
        deps.map((d, i) => {
          const dep = state.issues.get(d);
          const finished = dep && dep.status === 'done';
          return [i ? ', ' : null, h('span', { class: finished ? 'dep dep-done' : 'dep', title: dep ? label(dep.status) : 'unknown' }, d)];
        })));
    }
    if (issue.wait_reason) meta.push(h('li', { class: 'wait' }, h('span', { class: 'k' }, 'waits for'), ` ${issue.wait_reason}`));
    if (Number(issue.retry_count) > 0) meta.push(h('li', { class: 'retry' }, `retry ${issue.retry_count}`));
    const pr = state.prs.get(issue.id);
    if (pr) {
      const review = pr.last_review ? ` · last: ${pr.last_review}` : '';
      meta.push(h('li', { class: 'pr', testid: `pr-${issue.id}`, title: pr.repository },
        `PR #${pr.number} ${pr.state} · ${pr.cycles} change request${pr.cycles === 1 ? '' : 's'}${review}`));
    }
    const ver = verificationText(issue.verification);
    if (ver) {
      meta.push(h('li', {
        class: ver.failed ? 'verify verify-failed' : 'verify verify-passed',
        testid: `verification-${issue.id}`,
      }, `verification ${ver.passed} passed · ${ver.failed} failed`));
    }
    el.replaceChildren(
      h('div', { class: 'card-top' },
        h('span', { class: 'card-id' }, issue.id),
        h('span', { class: `prio ${priorityClass(issue.priority)}`, title: `priority ${issue.priority}` }, priorityText(issue.priority))),
      h('p', { class: 'card-name' }, issue.name || '(no name)'),
      h('ul', { class: 'card-meta' }, meta),
    );
    el.setAttribute('aria-label', `${issue.id} ${issue.name || ''}, ${label(issue.status)}`);
    el.dataset.status = issue.status;
  }

  function sortKey(issue) {
    return [-(Number(issue.priority) || 0), String(issue.id)];
  }

  function before(a, b) {
    const ka = sortKey(a);
    const kb = sortKey(b);
    return ka[0] !== kb[0] ? ka[0] < kb[0] : ka[1].localeCompare(kb[1], undefined, { numeric: true }) < 0;
  }

  /** Puts a card in its status column at its place (priority, then id); moves the same node. */
  function placeCard(el, issue) {
    const { list } = column(issue.status);
    let ref = null;
    for (const other of list.children) {
      if (other === el) continue;
      const o = state.issues.get(other.dataset.issueId);
      if (o && before(issue, o)) {
        ref = other;
        break;
      }
    }
    if (el.parentNode === list && (el.nextSibling === ref || (ref === null && el === list.lastChild))) return;
    list.insertBefore(el, ref);
  }

  function upsertCard(issue) {
    let el = state.cards.get(issue.id);
    if (!el) {
      el = h('li', { class: 'card', testid: `card-${issue.id}`, 'data-issue-id': issue.id });
      state.cards.set(issue.id, el);
    }
    fillCard(el, issue);
    placeCard(el, issue);
  }

  function applyBacklog(items) {
    const seen = new Set();
    state.issues.clear();
    for (const issue of items) state.issues.set(issue.id, issue);
    for (const issue of items) {
      seen.add(issue.id);
      upsertCard(issue);
    }
    for (const [id, el] of state.cards) {
      if (!seen.has(id)) {
        el.remove();
        state.cards.delete(id);
      }
    }
    updateColumns();
  }

  async function loadBacklog() {
    const id = state.selected;
    if (!id) return;
    await guarded('Backlog', async () => {
      const [items, prs] = await Promise.all([
        api(`/v1/runs/${encodeURIComponent(id)}/backlog`),
        api('/v1/prs'),
      ]);
      if (id !== state.selected) return;
      // The most recently changed pull request of each card (the list is newest first).
      state.prs = new Map();
      for (const pr of Array.isArray(prs) ? prs : []) {
        if (pr.card_id && !state.prs.has(pr.card_id)) state.prs.set(pr.card_id, pr);
      }
      applyBacklog(Array.isArray(items) ? items : []);
    });
  }

  function flash(el) {
    el.classList.remove('moved');
    void el.offsetWidth; // restart the animation
    el.classList.add('moved');
  }

  /** A status change of an issue on the board: the card moves to its new column. */
  function moveCard(issueId, to) {
    const issue = state.issues.get(issueId);
    if (!issue) return false;
    issue.status = to;
    upsertCard(issue);
    // Cards that depend on it show their dependency as finished.
    for (const other of state.issues.values()) {
      if (Array.isArray(other.depends_on) && other.depends_on.includes(issueId)) {
        fillCard(state.cards.get(other.id), other);
      }
    }
    updateColumns();
    flash(state.cards.get(issueId));
    announce(`${issueId} moved to ${label(to)}`);
    return true;
  }

  // ---- timeline -------------------------------------------------------------------------

  /**
   * A tool result after its arrow: ok, a refusal with its code, or an error. Results are
   * `{ok: true, ...}` or `{ok: false, error, code?}` (the code of a refused call).
   */
  function resultView(result) {
    const arrow = h('span', { class: 'arrow', 'aria-hidden': 'true' }, '→ ');
    if (result === undefined) {
      return h('span', { class: 'result muted', title: 'the turn stopped before this call' }, arrow, 'not run');
    }
    if (result.ok) {
      return h('span', { class: 'result ok' }, arrow, 'ok');
    }
    if (result.code) {
      const message = result.error.startsWith(`${result.code}: `)
        ? result.error.slice(result.code.length + 2)
        : result.error;
      return h('span', { class: 'result refused' }, arrow,
        h('span', { class: 'code', testid: 'refusal-code' }, result.code), ' ', compact(message, 300));
    }
    return h('span', { class: 'result failed' }, arrow, `error: ${compact(result.error, 300)}`);
  }

  /** One step of a turn: its call and result, or what it was corrected for. */
  function stepView(step) {
    const call = step.call;
    const outcome = step.correction
      ? h('span', { class: 'result refused' }, h('span', { class: 'arrow', 'aria-hidden': 'true' }, '→ '),
        'corrected: ', compact(step.correction, 300))
      : resultView(step.result === null ? undefined : step.result);
    return h('li', { class: 'call', testid: 'step' },
      h('span', { class: 'muted' }, `step ${step.n} `),
      h('code', { class: 'tool' }, call ? call.name : 'no tool call'),
      call && call.args !== undefined ? h('span', { class: 'args', title: compact(call.args, 2000) }, compact(call.args, 300)) : h('span'),
      step.content_reply ? h('span', { class: 'muted small', title: compact(step.content_reply, 2000) }, ' (content asked for apart) ') : null,
      outcome);
  }

  /** A turn with its steps (or, for turns stored before steps, its calls and their results). */
  function turnView(turn) {
    const calls = turn.tool_calls;
    const results = turn.tool_results;
    const steps = turn.steps || [];
    const items = steps.length ? steps.map(stepView) : calls.map(({ name, args }, i) => {
      return h('li', { class: 'call' },
        h('code', { class: 'tool' }, name),
        args !== undefined ? h('span', { class: 'args', title: compact(args, 2000) }, compact(args, 300)) : h('span'),
        resultView(results[i]));
    });
    for (const extra of steps.length ? [] : results.slice(calls.length)) {
      items.push(h('li', { class: 'call' }, h('span', { class: 'tool' }, '(result)'), resultView(extra)));
    }
    const status = String(turn.status || '');
    return h('li', { class: `turn turn-${status}`, testid: `turn-${turn.seq}` },
      h('div', { class: 'turn-head' },
        h('span', { class: 'seq' }, `#${turn.seq}`),
        h('span', { class: 'card-id' }, turn.issue_id),
        h('span', null, `${turn.role}`, h('span', { class: 'muted' }, ` @${turn.seat}`)),
        turn.review ? h('span', { class: 'badge review' }, 'review') : null,
        turn.worker ? h('span', { class: 'badge worker', testid: 'worker', title: 'the fleet worker that ran it' }, `on ${turn.worker}`) : null,
        h('span', { class: `badge turn-status-${status}` }, status),
        h('span', { class: 'muted grow' }, turn.model || ''),
        h('span', { class: 'muted' }, `${turn.tokens_in ?? 0} in / ${turn.tokens_out ?? 0} out`),
        h('span', { class: 'muted' }, duration(turn.started_at, turn.ended_at))),
      (turn.candidates || []).length > 1
        ? h('p', { class: 'muted small', testid: 'candidates' }, 'candidates: ' + turn.candidates
          .map((c) => `#${c.n} ${c.passed}/${c.total} passed${c.chosen ? ' (chosen)' : ''}`).join(', '))
        : null,
      items.length ? h('ul', { class: 'calls' }, items) : h('p', { class: 'muted small' }, 'no tool calls'),
      turn.error ? h('p', { class: 'turn-error' }, compact(turn.error, 400)) : null);
  }

  function roleMetricsView(metrics) {
    const roles = metrics && metrics.roles && typeof metrics.roles === 'object' ? Object.entries(metrics.roles) : [];
    return roles.map(([role, m]) => h('li', null,
      h('span', { class: 'role' }, role),
      ` ${m.turns} turn${m.turns === 1 ? '' : 's'} · ${m.tokens_in} in / ${m.tokens_out} out · `
      + `${m.tool_calls} tool call${m.tool_calls === 1 ? '' : 's'} · ${m.lines_written} lines written`));
  }

  async function loadRoleMetrics(id) {
    await guarded('Run metrics', async () => {
      const metrics = await api(`/v1/runs/${encodeURIComponent(id)}/metrics`);
      if (id !== state.selected) return;
      $('run-roles').replaceChildren(...roleMetricsView(metrics));
    });
  }

  async function loadSession() {
    const id = state.selected;
    if (!id) return;
    loadRoleMetrics(id);
    await guarded('Timeline', async () => {
      const session = await api(`/v1/sessions/${encodeURIComponent(id)}`);
      if (id !== state.selected) return;
      const turns = session && Array.isArray(session.turns) ? session.turns : [];
      const list = $('timeline');
      const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
      list.replaceChildren(...turns.map(turnView));
      $('timeline-empty').hidden = turns.length > 0;
      if (atBottom) list.scrollTop = list.scrollHeight;
      if (session && session.run) {
        const i = state.runs.findIndex((r) => r.id === session.run.id);
        if (i >= 0) state.runs[i] = { ...state.runs[i], ...session.run };
        else state.runs.unshift(session.run);
        renderRuns();
        renderRunHead();
      }
    });
  }

  // ---- approvals ------------------------------------------------------------------------

  async function decide(approval, verb, reasonInput, buttons, message) {
    for (const b of buttons) b.disabled = true;
    message.textContent = '';
    const reason = reasonInput.value.trim();
    try {
      await api(`/v1/approvals/${encodeURIComponent(approval.id)}/${verb}`, {
        method: 'POST',
        body: reason ? { reason } : {},
      });
      announce(`${approval.tool} on ${approval.issue_id} ${verb === 'approve' ? 'approved' : 'rejected'}`);
      loadApprovals();
      schedule('backlog', loadBacklog);
    } catch (e) {
      message.textContent = e.message;
      for (const b of buttons) b.disabled = false;
    }
  }

  /** A tool call's arguments for a person to judge: each one by name, text shown as text. */
  function argsView(args) {
    if (!args || typeof args !== 'object' || Array.isArray(args)) {
      const text = JSON.stringify(args, null, 2) || '';
      return h('pre', { class: 'args-block' }, text.length > 4000 ? `${text.slice(0, 3999)}…` : text);
    }
    const cut = (text) => (text.length > 4000 ? `${text.slice(0, 3999)}…` : text);
    return h('dl', { class: 'args-list' }, Object.entries(args).map(([name, value]) => [
      h('dt', null, name),
      typeof value === 'string' && value.includes('\n')
        ? h('dd', null, h('pre', { class: 'args-block' }, cut(value)))
        : h('dd', null, h('code', null, cut(typeof value === 'string' ? value : JSON.stringify(value)))),
    ]));
  }

  function approvalView(a) {
    const pending = a.status === 'pending';
    const parts = [
      h('div', { class: 'approval-head' },
        h('code', { class: 'tool' }, a.tool),
        h('span', null, ' on '),
        h('span', { class: 'card-id' }, a.issue_id),
        h('span', { class: 'muted' }, ` by ${a.role} · ${dateTime(a.created_at)}`),
        h('span', { class: `badge approval-${a.status}` }, a.status)),
      argsView(a.args),
    ];
    if (pending) {
      const reasonId = `reason-${a.id}`;
      const reason = h('input', { id: reasonId, type: 'text', placeholder: 'optional', testid: `reason-${a.id}` });
      const message = h('p', { class: 'form-message error', role: 'alert' });
      const approve = h('button', { type: 'button', class: 'primary', testid: `approve-${a.id}` }, 'Approve');
      const reject = h('button', { type: 'button', class: 'danger', testid: `reject-${a.id}` }, 'Reject');
      approve.addEventListener('click', () => decide(a, 'approve', reason, [approve, reject], message));
      reject.addEventListener('click', () => decide(a, 'reject', reason, [approve, reject], message));
      parts.push(h('div', { class: 'approval-actions' },
        h('label', { for: reasonId }, 'Reason'), reason, approve, reject), message);
    } else if (a.reason) {
      parts.push(h('p', { class: 'muted small' }, `reason: ${a.reason}`));
    }
    return h('li', {
      class: `approval${pending ? ' pending' : ''}`,
      testid: `approval-${a.id}`,
      'data-issue-id': a.issue_id,
      'data-status': a.status,
    }, parts);
  }

  async function loadApprovals() {
    const id = state.selected;
    if (!id) return;
    await guarded('Approvals', async () => {
      const list = await api(`/v1/approvals?run_id=${encodeURIComponent(id)}`);
      if (id !== state.selected) return;
      const all = Array.isArray(list) ? list : [];
      const pending = all.filter((a) => a.status === 'pending');
      const decided = all.filter((a) => a.status !== 'pending').slice(-10).reverse();
      const ul = $('approvals');
      // Keep a pending approval's element (and a reason being typed) while it stays pending.
      const typing = document.activeElement && ul.contains(document.activeElement);
      if (!typing) ul.replaceChildren(...pending.map(approvalView), ...decided.map(approvalView));
      $('approvals-empty').hidden = pending.length + decided.length > 0;
      $('approvals-empty').textContent = 'No pending approvals.';
    });
  }

  // ---- events ---------------------------------------------------------------------------

  function eventVisible(ev) {
    return $('events-all').checked || !state.selected || ev.run_id === state.selected;
  }

  function eventView(ev) {
    let detail;
    if (ev.event === 'status_change' && ev.data && typeof ev.data === 'object') {
      detail = `${ev.data.from ?? '?'} → ${ev.data.to ?? '?'}`;
    } else if (ev.data && typeof ev.data === 'object' && Object.keys(ev.data).length === 0) {
      detail = '';
    } else {
      detail = ev.data === undefined || ev.data === null ? '' : compact(ev.data, 400);
    }
    return h('li', { class: `event ev-${ev.event}`, testid: 'event', 'data-event': ev.event, 'data-issue-id': ev.issue_id || null },
      h('time', { datetime: ev.timestamp || null }, time(ev.timestamp)),
      h('span', { class: 'ev-head' },
        h('span', { class: 'ev-name' }, ev.event),
        ev.issue_id ? h('span', { class: 'card-id' }, ev.issue_id) : null,
        ev.role ? h('span', { class: 'muted' }, ev.role) : null,
        $('events-all').checked && ev.run_id ? h('span', { class: 'muted' }, `run ${ev.run_id}`) : null),
      detail ? h('span', { class: 'ev-data', title: detail }, detail) : null);
  }

  function renderEvents() {
    const shown = state.events.filter(eventVisible).slice(-200).reverse();
    $('events').replaceChildren(...shown.map(eventView));
    $('events-empty').hidden = shown.length > 0;
  }

  function pushEvent(ev) {
    state.events.push(ev);
    if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
    if (!eventVisible(ev)) return;
    const list = $('events');
    list.insertBefore(eventView(ev), list.firstChild);
    while (list.children.length > 200) list.lastChild.remove();
    $('events-empty').hidden = true;
  }

  /** Whether an event concerns the board on screen (its run, or another run of its build). */
  function onBoard(ev) {
    if (!state.selected || !ev.run_id) return false;
    if (ev.run_id === state.selected) return true;
    const run = selectedRun();
    const other = state.runs.find((r) => r.id === ev.run_id);
    return Boolean(run && other && run.build_id === other.build_id);
  }

  function handleEvent(ev) {
    if (!ev || typeof ev.event !== 'string') return;
    if (ev.event === 'lagged') {
      pushEvent({ ...ev, timestamp: ev.timestamp || new Date().toISOString() });
      refreshAll();
      return;
    }
    pushEvent(ev);
    switch (ev.event) {
      case 'loop_started':
      case 'loop_resumed':
      case 'loop_picked':
      case 'loop_card_ended':
      case 'loop_set_aside':
      case 'loop_idle':
      case 'loop_budget_exceeded':
      case 'loop_stopped':
        schedule('loop', loadLoop, 50);
        break;
      default:
    }
    const known = state.runs.some((r) => r.id === ev.run_id);
    schedule('runs', loadRuns, known ? 400 : 50);
    if (!onBoard(ev)) return;
    switch (ev.event) {
      case 'status_change': {
        const to = ev.data && ev.data.to;
        if (!ev.issue_id || typeof to !== 'string' || !moveCard(ev.issue_id, to)) {
          schedule('backlog', loadBacklog);
        }
        break;
      }
      case 'turn_start':
      case 'turn_complete':
      case 'turn_failed':
        schedule('session', loadSession);
        schedule('backlog', loadBacklog, 300);
        break;
      case 'approval_requested':
      case 'approval_decided':
        schedule('approvals', loadApprovals);
        schedule('backlog', loadBacklog);
        break;
      case 'session_start':
      case 'session_end':
        schedule('session', loadSession);
        schedule('backlog', loadBacklog);
        schedule('approvals', loadApprovals);
        schedule('project', loadProject, 300);
        break;
      default:
        if (ev.issue_id) schedule('backlog', loadBacklog, 300);
    }
  }

  // ---- the organization loop ------------------------------------------------------------

  /** The loop's state in one line: what it runs now, its counts, its latest decision. */
  function loopText(view) {
    if (!view || !view.id) return 'loop: not running';
    const where = view.here || !view.holder ? '' : ` (process ${view.holder.pid} on ${view.holder.host})`;
    const decision = view.last_decision || view.reason || '';
    if (!view.running) return `loop ${view.id} stopped ${view.status || ''}: ${decision}`;
    const current = view.current ? `, running ${view.current.issue} of ${view.current.epic}` : '';
    return `loop ${view.id}${where}: ${view.cards} cards, ${view.tokens} tokens${current} — ${decision}`;
  }

  async function loadLoop() {
    await guarded('Loop', async () => {
      const view = await api('/v1/loop');
      const el = $('loop-status');
      el.textContent = loopText(view);
      el.dataset.state = view && view.running ? 'running' : 'stopped';
    });
  }

  function setConn(stateName, text) {
    const el = $('ws-status');
    el.dataset.state = stateName;
    el.querySelector('.conn-text').textContent = text;
  }

  function connect() {
    clearTimeout(state.wsTimer);
    if (state.ws) {
      const old = state.ws;
      state.ws = null;
      old.close();
    }
    const url = new URL('/ws/events', window.location.href);
    url.protocol = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (state.key) url.searchParams.set('api_key', state.key);
    let ws;
    try {
      ws = new WebSocket(url.href);
    } catch {
      reconnectLater();
      return;
    }
    state.ws = ws;
    let opened = false;
    setConn('connecting', 'connecting…');
    ws.addEventListener('open', () => {
      if (state.ws !== ws) return;
      opened = true;
      state.wsAttempt = 0;
      setConn('open', 'live');
      refreshAll();
    });
    ws.addEventListener('message', (m) => {
      if (state.ws !== ws) return;
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch {
        return;
      }
      handleEvent(ev);
    });
    ws.addEventListener('close', () => {
      if (state.ws !== ws) return;
      state.ws = null;
      if (opened) {
        reconnectLater();
        return;
      }
      // Refused before opening: maybe the key. An API call tells (and shows the key banner);
      // without a valid key the next attempt waits for one (the banner's form reconnects).
      api('/v1/version').then(reconnectLater, (e) => {
        if (e.status === 401 || e.status === 403) setConn('closed', 'waiting for the API key');
        else reconnectLater();
      });
    });
  }

  function reconnectLater() {
    const base = Math.min(30000, 500 * 2 ** state.wsAttempt);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    state.wsAttempt += 1;
    setConn('closed', `offline, retrying in ${Math.max(1, Math.round(delay / 1000))} s`);
    state.wsTimer = setTimeout(connect, delay);
  }

  // ---- project (asset board) and metrics --------------------------------------------------

  /** A rock's or epic's name as a button that puts it in the start form's target. */
  function targetButton(card) {
    return h('button', {
      type: 'button',
      class: 'link',
      title: 'Use as the run target',
      onclick: () => {
        $('start-target').value = card.id;
        $('start-target').focus();
      },
    }, card.name || card.id);
  }

  /** A rock's or epic's status, or that it cannot be loaded. */
  function cardBadge(card, text) {
    return card.error
      ? h('span', { class: 'badge status-failed', title: card.error }, 'cannot load')
      : h('span', { class: `badge istatus-${card.status}` }, text);
  }

  function epicView(epic) {
    const issues = Array.isArray(epic.issues) ? epic.issues : [];
    const done = issues.filter((i) => i.status === 'done' || i.status === 'canceled').length;
    return h('li', { class: 'epic', testid: `epic-${epic.id}` },
      targetButton(epic),
      h('span', { class: 'muted' }, ` ${epic.id}`),
      cardBadge(epic, `${label(epic.status)} ${done}/${issues.length}`));
  }

  async function loadProject() {
    await guarded('Project', async () => {
      const board = await api('/v1/system/board');
      const rocks = board && Array.isArray(board.rocks) ? board.rocks : [];
      const epics = board && Array.isArray(board.epics) ? board.epics : [];
      const targets = new Set();
      const parts = [];
      for (const rock of rocks) {
        targets.add(rock.id);
        parts.push(h('div', { class: 'rock' },
          h('div', { class: 'rock-head' },
            targetButton(rock),
            h('span', { class: 'muted' }, ' rock'),
            cardBadge(rock, label(rock.status))),
          h('ul', { class: 'epics' }, (rock.epics || []).map(epicView))));
      }
      if (epics.length) {
        parts.push(h('div', { class: 'rock' },
          h('div', { class: 'rock-head muted' }, 'Epics in no rock'),
          h('ul', { class: 'epics' }, epics.map(epicView))));
      }
      for (const epic of [...rocks.flatMap((r) => r.epics || []), ...epics]) {
        targets.add(epic.id);
        for (const issue of epic.issues || []) targets.add(issue.id);
      }
      $('project').replaceChildren(...(parts.length ? parts : [h('p', { class: 'empty' }, 'No rocks or epics in this project.')]));
      $('targets').replaceChildren(...[...targets].map((t) => h('option', { value: t })));
    });
  }

  function setMeter(meterId, valueId, value) {
    const ok = typeof value === 'number' && Number.isFinite(value);
    $(meterId).value = ok ? value : 0;
    $(valueId).textContent = ok ? `${Math.round(value)}%` : 'n/a';
  }

  async function loadMetrics() {
    if (document.hidden || state.authBlocked) return;
    try {
      const m = await api('/v1/system/metrics');
      setMeter('cpu-meter', 'cpu-value', m.cpu_percent);
      setMeter('ram-meter', 'ram-value', m.ram_percent);
      const vram = $('vram-value');
      if (typeof m.vram_total_mb === 'number' && m.vram_total_mb > 0) {
        vram.textContent = `${Math.round(m.vram_used_mb || 0)} / ${Math.round(m.vram_total_mb)} MB`;
        vram.title = '';
      } else {
        vram.textContent = 'n/a';
        vram.title = 'no NVIDIA GPU found (nvidia-smi)';
      }
      $('metrics').title = `measured ${dateTime(m.timestamp)}`;
    } catch (e) {
      $('metrics').title = `metrics: ${e.message}`;
    }
  }

  function metricsLoop() {
    loadMetrics().finally(() => setTimeout(metricsLoop, METRICS_EVERY_MS));
  }

  // ---- the start form -------------------------------------------------------------------

  function updateProviderFields() {
    const p = $('start-provider').value;
    $('replay-fields').hidden = !(p === '' || p === 'replay');
    $('start-replay').required = p === 'replay';
  }

  async function startRun(event) {
    event.preventDefault();
    const message = $('start-message');
    const button = event.target.querySelector('button[type="submit"]');
    const target = $('start-target').value.trim();
    if (!target) {
      message.textContent = 'A target is needed: an epic, a rock or an issue id.';
      message.className = 'form-message error';
      return;
    }
    const body = { target };
    const provider = $('start-provider').value;
    if (provider) body.provider = provider;
    const replay = $('start-replay').value.trim();
    if (replay && !$('replay-fields').hidden) body.replay = replay;
    const delay = $('start-delay').value.trim();
    if (delay !== '' && !$('replay-fields').hidden) {
      const n = Number(delay);
      if (!Number.isInteger(n) || n < 0) {
        message.textContent = 'The delay is a whole number of milliseconds.';
        message.className = 'form-message error';
        return;
      }
      body.replay_delay_ms = n;
    }
    const model = $('start-model').value.trim();
    if (model) body.model = model;
    if ($('start-reset').checked) body.reset = true;
    button.disabled = true;
    message.className = 'form-message';
    message.textContent = 'Starting…';
    try {
      const answer = await api('/v1/system/run-active', { method: 'POST', body });
      const id = answer && answer.session_id;
      message.textContent = id ? `Run ${id} started.` : 'Run started.';
      if (id) select(id, { follow: true });
      schedule('runs', loadRuns, 0);
    } catch (e) {
      message.className = 'form-message error';
      message.textContent = e.status === 401 || e.status === 403
        ? 'The API key is missing or wrong (see the banner above).'
        : e.message;
    } finally {
      button.disabled = false;
    }
  }

  // ---- start ----------------------------------------------------------------------------

  function refreshAll() {
    schedule('runs', loadRuns, 0);
    schedule('loop', loadLoop, 0);
    schedule('project', loadProject, 0);
    if (state.selected) {
      schedule('backlog', loadBacklog, 0);
      schedule('session', loadSession, 0);
      schedule('approvals', loadApprovals, 0);
    }
  }

  /** One line of the operations-lead conversation, as text only. */
  function chatLine(kind, text, files) {
    const li = document.createElement('li');
    li.className = kind;
    li.dataset.kind = kind;
    li.textContent = text;
    if (files && files.length) {
      const span = document.createElement('span');
      span.className = 'files';
      span.dataset.testid = 'chat-files';
      span.textContent = files.map((f) => `wrote ${f}`).join('\n');
      li.appendChild(span);
    }
    $('chat-log').appendChild(li);
    li.scrollIntoView({ block: 'nearest' });
  }

  /** Sends a message to the driver (POST /v1/system/chat-driver) with the conversation so far. */
  async function sendChat(event) {
    event.preventDefault();
    const input = $('chat-message');
    const status = $('chat-status');
    const button = event.target.querySelector('button[type="submit"]');
    const message = input.value.trim();
    if (!message) return;
    const body = { message, history: state.chat.slice(-20) };
    const provider = $('start-provider').value;
    if (provider) body.provider = provider;
    const replay = $('chat-replay').value.trim();
    if (replay) body.replay = replay;
    const model = $('start-model').value.trim();
    if (model) body.model = model;
    chatLine('user', message);
    input.value = '';
    button.disabled = true;
    status.className = 'form-message';
    status.textContent = 'Asking the operations lead…';
    try {
      const answer = await api('/v1/system/chat-driver', { method: 'POST', body });
      const text = answer.action === 'reply' ? answer.reply : `${answer.action}: ${answer.reply}`;
      chatLine('lead', text, answer.changed_files);
      state.chat.push({ role: 'user', content: message }, { role: 'assistant', content: text });
      status.textContent = '';
      if (answer.changed_files && answer.changed_files.length) schedule('runs', refreshAll, 0);
    } catch (e) {
      const text = e.status === 401 || e.status === 403
        ? 'The API key is missing or wrong (see the banner above).'
        : e.message;
      chatLine('refused', text);
      state.chat.push({ role: 'user', content: message }, { role: 'assistant', content: `(refused) ${text}` });
      status.textContent = '';
    } finally {
      button.disabled = false;
    }
  }

  function init() {
    initKey();
    for (const s of STATUSES) column(s);
    updateColumns();
    renderRunHead();
    $('start-form').addEventListener('submit', startRun);
    $('chat-form').addEventListener('submit', sendChat);
    $('start-provider').addEventListener('change', updateProviderFields);
    updateProviderFields();
    $('halt').addEventListener('click', halt);
    $('events-all').addEventListener('change', renderEvents);
    $('auth-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const key = $('auth-key').value.trim();
      if (!key) return;
      storeKey(key);
      $('auth-key').value = '';
      state.authBlocked = false;
      $('auth-banner').hidden = true;
      state.wsAttempt = 0;
      connect();
      refreshAll();
      loadMetrics();
    });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) loadMetrics();
    });
    refreshAll();
    connect();
    metricsLoop();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
