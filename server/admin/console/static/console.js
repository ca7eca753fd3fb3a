// The dcmx console's front end: plain DOM over the JSON API of the same server (/api/...).
// Every text from the server goes in with textContent (never as HTML). Every change sends the
// session's CSRF token in X-CSRF-Token (csrf.ts on the server).
'use strict';

/** The session (GET /api/session): user, admin, domains managed, csrf. */
let session;
/** Timers of the page shown (cleared when another is shown). */
let timers = [];

/** An element: h('td', {class: 'mono'}, 'text', child, ...). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) el.append(c instanceof Node ? c : String(c));
  return el;
}

/** Calls the API; resolves with the JSON body, or rejects with the server's error message. */
async function api(method, path, body) {
  const init = { method, headers: {} };
  if (method !== 'GET') init.headers['x-csrf-token'] = session ? session.csrf : '';
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch('/api/' + path, init);
  if (r.status === 401) {
    location.assign('/login');
    throw new Error('logged out');
  }
  const payload = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(payload.error || `${r.status} ${r.statusText}`);
  return payload;
}

/** GETs `path` from the API; resolves with the body, or with undefined once the error is said. */
async function load(path) {
  try {
    return await api('GET', path);
  } catch (e) {
    say(e.message, false);
    return undefined;
  }
}

/** Shows a message above the page (ok or error). */
function say(text, ok = true) {
  const m = document.getElementById('message');
  m.textContent = text;
  m.className = ok ? 'ok' : 'error';
}

/** Runs an action of a button or form: its result said, its error shown, then `after`. */
async function act(what, fn, after) {
  try {
    await fn();
    say(`${what}: done`);
    if (after) await after();
  } catch (e) {
    say(`${what}: ${e.message}`, false);
  }
}

/** A small form: fields [{name, label, type?, placeholder?}], submitted as an object. */
function form(id, fields, submit, onSubmit) {
  const f = h('form', { class: 'inline', id },
    fields.map((x) => h('label', {}, x.label, h('input', { name: x.name, type: x.type || 'text', placeholder: x.placeholder, value: x.value, required: x.required !== false }))),
    h('button', { type: 'submit' }, submit));
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const values = Object.fromEntries(new FormData(f).entries());
    onSubmit(values, f);
  });
  return f;
}

// ------------------------------------------------------------------ dashboard

const SERIES = [
  { key: 'messagesIn', label: 'messages in', color: '#1d3557' },
  { key: 'delivered', label: 'delivered', color: '#1a7f37' },
  { key: 'deferred', label: 'deferred', color: '#9a6700' },
  { key: 'bounced', label: 'bounced', color: '#b42318' },
];
const POLL_MS = 2000;
const KEEP = 600;

/** A uPlot line chart of the series `series` ([{label, color}]) in `el`. */
function chart(el, title, series) {
  const opts = {
    title, width: Math.max(480, el.clientWidth - 20), height: 200,
    // At least the last two minutes on the time axis, however few the points so far.
    // (from the data itself: with one point uPlot would widen the range by a day of seconds-as-ms).
    scales: {
      x: {
        time: true,
        range: (u, min, max) => {
          const xs = u.data[0];
          if (!xs || xs.length === 0) return [min, max];
          const last = xs[xs.length - 1];
          return [Math.min(xs[0], last - 120), last + 1];
        },
      },
      y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] },
    },
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: true, size: 4 } }))],
    axes: [{}, { size: 60 }],
  };
  return new uPlot(opts, [[], ...series.map(() => [])], el);
}

function dashboard(main) {
  const tiles = h('div', { class: 'tiles', id: 'tiles' });
  const charts = h('div', { class: 'grid', id: 'charts' });
  const mailBox = h('section', { id: 'chart-mail' });
  const dnsBox = h('section', { id: 'chart-dns' });
  const ldapBox = h('section', { id: 'chart-ldap' });
  const queueBox = h('section', { id: 'chart-queue' });
  charts.append(mailBox, dnsBox, ldapBox, queueBox);
  const health = h('section', { id: 'health' }, h('h2', {}, 'Health'));
  const feed = h('section', { id: 'changes' }, h('h2', {}, 'Recent changes'));
  main.append(h('h1', {}, 'Dashboard'), tiles, charts, h('div', { class: 'grid' }, health, feed));

  const mail = chart(mailBox, 'Mail (per second)', SERIES);
  const dns = chart(dnsBox, 'DNS queries (per second)', [{ label: 'queries', color: '#1d3557' }]);
  const ldap = chart(ldapBox, 'LDAP operations (per second)', [{ label: 'operations', color: '#6639ba' }]);
  const queue = chart(queueBox, 'Queue depth', [{ label: 'messages', color: '#9a6700' }, { label: 'held', color: '#b42318' }]);
  const data = { t: [], mail: SERIES.map(() => []), dns: [], ldap: [], queue: [], held: [] };
  let last;

  /** Adds sample `s` (GET /api/stats or /api/history) to the charts: rates since the one before. */
  const add = (s) => {
    if (last && s.time > last.time) {
      const dt = (s.time - last.time) / 1000;
      const rate = (k) => Math.max(0, (s[k] - last[k]) / dt);
      data.t.push(s.time / 1000);
      SERIES.forEach((x, i) => data.mail[i].push(rate(x.key)));
      data.dns.push(rate('dnsQueries'));
      data.ldap.push(rate('ldap'));
      data.queue.push(s.queue);
      data.held.push(s.queueHeld);
      if (data.t.length > KEEP) for (const a of [data.t, ...data.mail, data.dns, data.ldap, data.queue, data.held]) a.shift();
    }
    last = s;
  };
  const draw = () => {
    charts.dataset.points = String(data.t.length);
    mail.setData([data.t, ...data.mail]);
    dns.setData([data.t, data.dns]);
    ldap.setData([data.t, data.ldap]);
    queue.setData([data.t, data.queue, data.held]);
  };
  const tile = (id, n, label) => h('div', { class: 'tile', id }, h('div', { class: 'n' }, n), h('div', { class: 'l' }, label));
  const poll = async () => {
    let s;
    try {
      s = await api('GET', 'stats');
    } catch (e) {
      say(`stats: ${e.message}`, false);
      return;
    }
    tiles.replaceChildren(
      ...SERIES.map((x) => tile(`total-${x.key}`, s[x.key], x.label)),
      tile('total-dns', s.dnsQueries, 'DNS queries'),
      tile('total-ldap', s.ldap, 'LDAP operations'),
      tile('total-queue', s.queue, 'in the queue'),
    );
    add(s);
    draw();
  };
  const refresh = async () => {
    try {
      const [hs, changes] = await Promise.all([api('GET', 'health'), api('GET', 'changes?limit=30')]);
      health.replaceChildren(h('h2', {}, 'Health'), h('table', {},
        h('tr', {}, h('td', {}, 'store'), h('td', { class: hs.store.healthy ? 'up' : 'down', id: 'health-store' }, hs.store.status)),
        hs.endpoints.map((e) => h('tr', {}, h('td', {}, `${e.name.toUpperCase()} (port ${e.port})`),
          h('td', { class: e.up ? 'up' : 'down', id: `health-${e.name}` }, e.up ? 'up' : 'down')))));
      feed.replaceChildren(h('h2', {}, 'Recent changes'), h('ul', { class: 'feed' },
        changes.map((c) => h('li', {}, h('span', { class: 't' }, `#${c.changeNumber} ${c.time}`), `${c.type} ${c.dn}`,
          c.actor ? h('span', { class: 't' }, ` by ${c.actor}`) : null))));
    } catch (e) {
      say(e.message, false);
    }
  };
  const start = async () => {
    for (const s of await api('GET', 'history').catch(() => [])) add(s);
    await poll();
  };
  void start();
  void refresh();
  timers.push(setInterval(poll, POLL_MS), setInterval(refresh, 5 * POLL_MS));
}

// ------------------------------------------------------------------ domains

async function domains(main) {
  const list = h('section', { id: 'domain-list' });
  const detail = h('div', { id: 'domain-detail' });
  main.append(h('h1', {}, 'Domains'), list, detail);
  const show = async () => {
    const ds = await api('GET', 'domains');
    list.replaceChildren(
      h('table', {}, h('tr', {}, ['domain', 'status', 'zone', 'serial', 'route'].map((x) => h('th', {}, x))),
        ds.map((d) => h('tr', { 'data-domain': d.name },
          h('td', {}, h('a', { href: `/domains?d=${encodeURIComponent(d.name)}`, onclick: (ev) => { ev.preventDefault(); history.pushState({}, '', `/domains?d=${encodeURIComponent(d.name)}`); void one(d.name); } }, d.name)),
          h('td', { class: `status-${d.status}` }, d.status), h('td', {}, d.zone), h('td', { class: 'mono' }, d.serial ?? ''), h('td', {}, d.route)))),
      session.admin ? form('add-domain', [{ name: 'name', label: 'New domain', placeholder: 'example.org' }], 'Add domain',
        (v, f) => act(`add ${v.name}`, () => api('POST', 'domains', { name: v.name }), async () => { f.reset(); await show(); await one(v.name); })) : null,
    );
  };
  const one = async (name) => {
    const d = await load(`domains/${encodeURIComponent(name)}`);
    if (!d) return;
    const path = `domains/${encodeURIComponent(d.name)}`;
    const reload = async () => { await show(); await one(d.name); };
    const userRows = d.users.map((u) => h('tr', { 'data-user': u.uid },
      h('td', { class: 'mono' }, u.mail), h('td', { class: 'mono' }, u.aliases.join(', ')),
      h('td', {},
        form(`password-${u.uid}`, [{ name: 'password', label: 'New password', type: 'password' }], 'Set password',
          (v) => act(`password of ${u.mail}`, () => api('POST', `${path}/users/${encodeURIComponent(u.uid)}/password`, { password: v.password }))),
        form(`aliases-${u.uid}`, [{ name: 'aliases', label: 'Aliases (comma separated)', required: false, placeholder: `info@${d.name}`, value: u.aliases.join(', ') }], 'Set aliases',
          (v) => act(`aliases of ${u.mail}`, () => api('POST', `${path}/users/${encodeURIComponent(u.uid)}/aliases`, { aliases: v.aliases.split(',') }), reload)),
        h('button', { class: 'danger', type: 'button', onclick: () => confirm(`Delete ${u.mail}?`) && act(`delete ${u.mail}`, () => api('DELETE', `${path}/users/${encodeURIComponent(u.uid)}`), reload) }, 'Delete'))));
    detail.replaceChildren(h('section', { id: 'domain', 'data-domain': d.name },
      h('h2', {}, d.name),
      h('table', {},
        h('tr', {}, h('th', {}, 'status'), h('td', { class: `status-${d.status}`, id: 'domain-status' }, d.status)),
        h('tr', {}, h('th', {}, 'zone / serial'), h('td', { class: 'mono', id: 'domain-serial' }, `${d.zone} ${d.serial ?? ''}`)),
        h('tr', {}, h('th', {}, 'route'), h('td', { id: 'domain-route' }, d.route)),
        h('tr', {}, h('th', {}, 'catch-all'), h('td', { class: 'mono' }, d.catchall || '(none)'))),
      session.admin ? h('p', {},
        d.status === 'hold'
          ? h('button', { type: 'button', id: 'release', onclick: () => act(`release ${d.name}`, () => api('POST', `${path}/release`), reload) }, 'Release')
          : h('button', { type: 'button', class: 'secondary', id: 'hold', onclick: () => act(`hold ${d.name}`, () => api('POST', `${path}/hold`), reload) }, 'Hold mail'),
        ' ',
        h('button', { type: 'button', class: 'danger', id: 'remove', onclick: () => confirm(`Remove ${d.name}? Mail is refused and its mail DNS records withdrawn; mailboxes and the zone are kept.`) && act(`remove ${d.name}`, () => api('DELETE', path), reload) }, 'Remove')) : null,
      form('catchall', [{ name: 'address', label: 'Catch-all address', required: false, placeholder: `catchall@${d.name}`, value: d.catchall }], 'Set catch-all',
        (v) => act(`catch-all of ${d.name}`, () => api('POST', `${path}/catchall`, { address: v.address }), reload)),
      h('h3', {}, 'DNS records as served'), h('pre', { id: 'records' }, d.records.join('\n')),
      h('h3', {}, 'Mailboxes'),
      h('table', { id: 'users' }, h('tr', {}, ['address', 'aliases', ''].map((x) => h('th', {}, x))), userRows),
      form('add-user', [{ name: 'uid', label: 'User', placeholder: 'alice' }, { name: 'name', label: 'Full name', required: false }, { name: 'password', label: 'Password', type: 'password' }], 'Add mailbox',
        (v, f) => act(`add ${v.uid}@${d.name}`, () => api('POST', `${path}/users`, v), async () => { f.reset(); await reload(); }))));
  };
  await show();
  const wanted = new URLSearchParams(location.search).get('d');
  if (wanted) await one(wanted);
}

// ------------------------------------------------------------------ queue

const STATUSES = ['active', 'hold', 'deferred', 'queued'];

/** A time (ms since the epoch) for a table cell. */
function when(ms) {
  return ms ? new Date(ms).toLocaleString() : '';
}

async function queuePage(main) {
  if (!session.admin) {
    main.append(h('h1', {}, 'Queue'), h('p', {}, 'The queue is the administrator\'s.'));
    return;
  }
  const wanted = new URLSearchParams(location.search);
  const filter = h('form', { class: 'inline', id: 'queue-filter' },
    h('label', {}, 'Domain', h('input', { name: 'domain', placeholder: 'example.org', value: wanted.get('domain') || '' })),
    h('label', {}, 'Status', h('select', { name: 'status' }, h('option', { value: '' }, 'any'),
      STATUSES.map((x) => h('option', { value: x, selected: wanted.get('status') === x }, x)))),
    h('button', { type: 'submit' }, 'Show'),
    h('button', { type: 'button', class: 'secondary', id: 'retry-all', onclick: () => act('retry all', () => api('POST', 'queue/retry'), show) }, 'Retry all'));
  const list = h('section', { id: 'queue-list' });
  const detail = h('div', { id: 'queue-detail' });
  main.append(h('h1', {}, 'Queue'), filter, list, detail);
  filter.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams([...new FormData(filter).entries()].filter(([, v]) => v !== ''));
    history.replaceState({}, '', `/queue${q.size ? '?' + q : ''}`);
    void show();
  });
  const query = () => new URLSearchParams([...new FormData(filter).entries()].filter(([, v]) => v !== '')).toString();
  const actions = (m) => {
    const path = `queue/${encodeURIComponent(m.id)}`;
    const after = async () => { await show(); if (detail.dataset.id === m.id) await one(m.id); };
    return h('td', { class: 'actions' },
      m.status === 'hold'
        ? h('button', { type: 'button', class: 'release', onclick: () => act(`release ${m.id}`, () => api('POST', `${path}/release`), after) }, 'Release')
        : h('button', { type: 'button', class: 'retry', onclick: () => act(`retry ${m.id}`, () => api('POST', `${path}/retry`), after) }, 'Retry now'),
      ' ',
      m.status === 'hold' ? null : h('button', { type: 'button', class: 'secondary hold', onclick: () => act(`hold ${m.id}`, () => api('POST', `${path}/hold`), after) }, 'Hold'),
      ' ',
      h('button', { type: 'button', class: 'secondary bounce', onclick: () => confirm(`Return ${m.id} to its sender?`) && act(`bounce ${m.id}`, () => api('POST', `${path}/bounce`), after) }, 'Bounce'),
      ' ',
      h('button', { type: 'button', class: 'danger delete', onclick: () => confirm(`Delete ${m.id} without notice?`) && act(`delete ${m.id}`, () => api('DELETE', path), after) }, 'Delete'));
  };
  async function show() {
    const ms = await load(`queue${query() ? '?' + query() : ''}`);
    if (!ms) return;
    list.replaceChildren(h('p', {}, `${ms.length} message${ms.length === 1 ? '' : 's'}`),
      h('table', {}, h('tr', {}, ['id', 'status', 'sender', 'received', 'size', 'recipients', ''].map((x) => h('th', {}, x))),
        ms.map((m) => h('tr', { 'data-id': m.id, 'data-status': m.status },
          h('td', { class: 'mono' }, h('a', { href: '#', onclick: (ev) => { ev.preventDefault(); void one(m.id); } }, m.id)),
          h('td', { class: `status-${m.status}` }, m.status),
          h('td', { class: 'mono' }, m.sender || '<>'),
          h('td', {}, when(m.receivedAt)),
          h('td', {}, m.size),
          h('td', { class: 'mono' }, m.recipients.map((r) => h('div', {}, `${r.address} (${r.attempts} attempt${r.attempts === 1 ? '' : 's'})`,
            r.lastError ? h('div', { class: 't' }, r.lastError) : null))),
          actions(m)))));
  }
  async function one(id) {
    const m = await load(`queue/${encodeURIComponent(id)}`);
    if (!m) return;
    detail.dataset.id = m.id;
    detail.replaceChildren(h('section', { id: 'message', 'data-id': m.id },
      h('h2', {}, `Message ${m.id}`),
      h('table', {},
        h('tr', {}, h('th', {}, 'status'), h('td', { class: `status-${m.status}` }, m.status)),
        h('tr', {}, h('th', {}, 'sender'), h('td', { class: 'mono' }, m.sender || '<>')),
        h('tr', {}, h('th', {}, 'received'), h('td', {}, when(m.receivedAt))),
        h('tr', {}, h('th', {}, 'size'), h('td', {}, `${m.size} bytes${m.smtpUtf8 ? ', SMTPUTF8' : ''}${m.eightBitMime ? ', 8BITMIME' : ''}`)),
        m.heldAt ? h('tr', {}, h('th', {}, 'held since'), h('td', {}, when(m.heldAt))) : null),
      h('h3', {}, 'Recipients'),
      h('table', { id: 'message-recipients' }, h('tr', {}, ['address', 'state', 'attempts', 'last attempt', 'last answer', 'next attempt'].map((x) => h('th', {}, x))),
        m.recipients.map((r) => h('tr', {}, h('td', { class: 'mono' }, r.address), h('td', {}, r.state), h('td', {}, r.attempts),
          h('td', {}, when(r.lastAttempt)), h('td', { class: 'mono' }, r.lastError || ''), h('td', {}, when(r.nextAttempt))))),
      h('h3', {}, 'Header'),
      m.headers === null ? h('p', {}, '(the message\'s bytes cannot be read)')
        : h('table', { id: 'message-headers' }, m.headers.map((f) => h('tr', {}, h('th', { class: 'mono' }, f.name), h('td', { class: 'mono' }, f.value))))));
  }
  await show();
  timers.push(setInterval(() => void show(), 5000));
}

// ------------------------------------------------------------------ shell

const PAGES = { '/': dashboard, '/domains': domains, '/queue': queuePage };

async function start() {
  try {
    session = await api('GET', 'session');
  } catch {
    return;
  }
  document.getElementById('who').textContent = session.admin ? `${session.user} (administrator)` : `${session.user} (manages ${session.domains.join(', ')})`;
  document.getElementById('logout').addEventListener('click', async () => {
    await api('POST', 'logout').catch(() => undefined);
    location.assign('/login');
  });
  for (const a of document.querySelectorAll('header nav a')) if (a.getAttribute('href') === location.pathname) a.classList.add('current');
  const main = document.getElementById('main');
  for (const t of timers) clearInterval(t);
  timers = [];
  await (PAGES[location.pathname] || dashboard)(main);
}

window.addEventListener('popstate', () => location.reload());
void start();
