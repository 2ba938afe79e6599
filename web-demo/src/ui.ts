// The page: three panels (unary lookup, unary create with validation, server
// stream) driving demo.v1.UserService through whatever Transport it is given,
// each with the equivalent REST call as a curl command. Text from the server
// is only ever inserted as text nodes, never as HTML.
import { Code, ConnectError, createClient, type Transport } from '@connectrpc/connect';
import { toJson, toJsonString } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { Role, UserSchema, UserService, type User } from 'gw-gen/demo/v1/user_pb';
import { BadRequestSchema } from 'gw-gen/google/rpc/error_details_pb';
import { codeName, formatMs, httpStatus } from './status';
import { curlCreateUser, curlGetUser, curlListUsers } from './curl';

export interface PageInfo {
  gatewayUrl: string;   // base URL of the gateway, no trailing slash
  crossOrigin: boolean; // the gateway is not the page's origin (CORS)
  mock: boolean;        // development build with a fake backend
}

type Child = Node | string | null | undefined | false;

function h(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) if (c) el.append(c);
  return el;
}

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
}

const roleLabels: Record<number, string> = {
  [Role.UNSPECIFIED]: 'no role',
  [Role.VIEWER]: 'viewer',
  [Role.EDITOR]: 'editor',
  [Role.ADMIN]: 'admin',
};

function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  return (parts.slice(0, 2).map((p) => p[0].toUpperCase()).join('')) || '?';
}

function userCard(u: User): HTMLElement {
  const meta: Child[] = [h('span', { class: 'chip' }, roleLabels[u.role] ?? `role ${u.role}`)];
  if (u.active) meta.push(h('span', { class: 'chip chip-ok' }, 'active'));
  for (const t of u.tags) meta.push(h('span', { class: 'chip chip-tag' }, `#${t}`));
  let since: Child = null;
  if (u.createdAt) since = h('span', { class: 'since' }, `since ${timestampDate(u.createdAt).toISOString().slice(0, 10)}`);
  return h('div', { class: 'user', 'data-testid': 'user-card' },
    h('div', { class: 'avatar', 'aria-hidden': 'true' }, initials(u.name)),
    h('div', { class: 'user-main' },
      h('div', { class: 'user-name' }, u.name || '(no name)', h('span', { class: 'user-id' }, `id ${u.id}`)),
      h('div', { class: 'user-email' }, u.email),
      h('div', { class: 'user-meta' }, ...meta, since)));
}

// The reply pane beside the curl command: the message as ProtoJSON, which is
// the body the REST route returns, or for a failure the google.rpc.Status a
// REST client gets as its body (details with a type this page knows).
function showReply(pane: string, code: number | null, body: string): void {
  const status = byId(`${pane}-reply-status`);
  const pre = byId(`${pane}-reply`);
  status.textContent = code === null ? '' : `HTTP ${httpStatus(code)}`;
  status.className = `reply-status ${code === null ? '' : code === 0 ? 'reply-ok' : 'reply-err'}`;
  pre.textContent = body;
}

function userJson(u: User): string {
  return toJsonString(UserSchema, u, { prettySpaces: 2 });
}

function statusJson(e: unknown): string {
  const err = ConnectError.from(e);
  const details = err.findDetails(BadRequestSchema).map((d) => ({
    '@type': 'type.googleapis.com/google.rpc.BadRequest',
    ...(toJson(BadRequestSchema, d) as Record<string, unknown>),
  }));
  const status: Record<string, unknown> = { code: err.code, message: err.rawMessage };
  if (details.length) status.details = details;
  return JSON.stringify(status, null, 2);
}

interface Outcome {
  code: number;
  message: string;
  ms: number;
}

function errorOutcome(e: unknown, ms: number): Outcome {
  const err = ConnectError.from(e);
  return { code: err.code, message: err.rawMessage, ms };
}

// The status line under a form: gRPC code, message, time, and the HTTP status
// the same call would get over REST.
function showStatus(el: HTMLElement, o: Outcome | 'running' | 'idle', label = 'calling…'): void {
  el.replaceChildren();
  el.className = 'status';
  if (o === 'idle') {
    el.append(h('span', { class: 'muted' }, 'No call yet.'));
    return;
  }
  if (o === 'running') {
    el.classList.add('status-running');
    el.append(h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', {}, label));
    return;
  }
  el.classList.add(o.code === 0 ? 'status-ok' : 'status-err');
  el.dataset.code = String(o.code);
  el.append(
    h('span', { class: 'badge', 'data-testid': 'code' }, `${codeName(o.code)} (${o.code})`),
    h('span', { class: 'status-msg' }, o.message || (o.code === 0 ? 'success' : '')),
    h('span', { class: 'status-time' }, formatMs(o.ms)),
    h('span', { class: 'status-http', title: 'What a REST client of grpcgate gets for this status' },
      `REST: HTTP ${httpStatus(o.code)}`));
}

function wireCopyButtons(): void {
  for (const btn of Array.from(document.querySelectorAll<HTMLButtonElement>('button[data-copy]'))) {
    btn.addEventListener('click', async () => {
      const text = byId(btn.dataset.copy!).textContent ?? '';
      try {
        await navigator.clipboard.writeText(text);
        btn.textContent = 'Copied';
      } catch {
        btn.textContent = 'Select & copy';
      }
      setTimeout(() => { btn.textContent = 'Copy'; }, 1500);
    });
  }
}

export function start(transport: Transport, info: PageInfo): void {
  const client = createClient(UserService, transport);
  const base = info.gatewayUrl;

  byId('gateway-url').textContent = base;
  byId('origin-mode').textContent = info.mock
    ? 'development mock (no gateway)'
    : info.crossOrigin ? `cross-origin from ${location.origin} (CORS)` : 'same origin';
  if (info.mock) document.body.classList.add('mock');
  for (const el of Array.from(document.querySelectorAll('.host'))) el.textContent = new URL(base).host;
  wireCopyButtons();

  // --- 1. GetUser ---------------------------------------------------------
  const lookupForm = byId<HTMLFormElement>('lookup-form');
  const lookupId = byId<HTMLInputElement>('lookup-id');
  const lookupStatus = byId('lookup-status');
  const lookupResult = byId('lookup-result');
  const lookupCurl = byId('lookup-curl');
  const renderLookupCurl = () => { lookupCurl.textContent = curlGetUser(base, lookupId.value.trim() || '0'); };
  lookupId.addEventListener('input', renderLookupCurl);
  renderLookupCurl();
  showStatus(lookupStatus, 'idle');

  lookupForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const raw = lookupId.value.trim();
    if (!/^\d{1,18}$/.test(raw)) {
      lookupResult.replaceChildren(h('p', { class: 'field-error' }, 'Enter a whole number, for example 1.'));
      return;
    }
    showStatus(lookupStatus, 'running');
    lookupResult.replaceChildren();
    const t0 = performance.now();
    try {
      const user = await client.getUser({ id: BigInt(raw) });
      showStatus(lookupStatus, { code: 0, message: '', ms: performance.now() - t0 });
      lookupResult.replaceChildren(userCard(user));
      showReply('lookup', 0, userJson(user));
    } catch (e) {
      const o = errorOutcome(e, performance.now() - t0);
      showStatus(lookupStatus, o);
      showReply('lookup', o.code, statusJson(e));
    }
  });

  // --- 2. CreateUser ------------------------------------------------------
  const createForm = byId<HTMLFormElement>('create-form');
  const createName = byId<HTMLInputElement>('create-name');
  const createEmail = byId<HTMLInputElement>('create-email');
  const createRole = byId<HTMLSelectElement>('create-role');
  const createStatus = byId('create-status');
  const createResult = byId('create-result');
  const createCurl = byId('create-curl');
  const fieldInputs: Record<string, HTMLInputElement> = { name: createName, email: createEmail };

  const createBody = () => {
    const body: Record<string, unknown> = { name: createName.value, email: createEmail.value };
    const role = Number(createRole.value);
    if (role) body.role = Role[role] ? `ROLE_${Role[role]}` : role;
    return body;
  };
  const renderCreateCurl = () => { createCurl.textContent = curlCreateUser(base, createBody()); };
  for (const el of [createName, createEmail, createRole]) el.addEventListener('input', renderCreateCurl);
  renderCreateCurl();
  showStatus(createStatus, 'idle');

  const clearFieldErrors = () => {
    for (const el of Array.from(createForm.querySelectorAll('.field-error'))) el.remove();
    for (const input of Object.values(fieldInputs)) input.removeAttribute('aria-invalid');
  };

  byId('create-invalid').addEventListener('click', () => {
    createName.value = '';
    createEmail.value = 'not-an-email';
    renderCreateCurl();
    clearFieldErrors();
  });

  createForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFieldErrors();
    createResult.replaceChildren();
    showStatus(createStatus, 'running');
    const t0 = performance.now();
    try {
      const user = await client.createUser({
        name: createName.value,
        email: createEmail.value,
        role: Number(createRole.value) as Role,
        active: true,
      });
      showStatus(createStatus, { code: 0, message: '', ms: performance.now() - t0 });
      createResult.replaceChildren(userCard(user));
      showReply('create', 0, userJson(user));
    } catch (e) {
      const o = errorOutcome(e, performance.now() - t0);
      showStatus(createStatus, o);
      showReply('create', o.code, statusJson(e));
      // google.rpc.BadRequest travels in grpc-status-details-bin; show each
      // violation next to its input, and all of them as a list.
      const violations = ConnectError.from(e).findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations);
      if (violations.length === 0) return;
      const list = h('ul', { class: 'violations', 'data-testid': 'violations' });
      for (const v of violations) {
        list.append(h('li', {}, h('code', {}, v.field || '(request)'), ' ', v.description));
        const input = fieldInputs[v.field];
        if (input) {
          input.setAttribute('aria-invalid', 'true');
          input.closest('label')?.append(
            h('span', { class: 'field-error', 'data-field': v.field }, v.description));
        }
      }
      createResult.replaceChildren(
        h('p', { class: 'detail-title' }, 'google.rpc.BadRequest detail, decoded in the browser:'), list);
    }
  });

  // --- 3. ListUsers (server streaming) ------------------------------------
  const streamForm = byId<HTMLFormElement>('stream-form');
  const streamSize = byId<HTMLInputElement>('stream-size');
  const streamDelay = byId<HTMLInputElement>('stream-delay');
  const streamStart = byId<HTMLButtonElement>('stream-start');
  const streamCancel = byId<HTMLButtonElement>('stream-cancel');
  const streamStatus = byId('stream-status');
  const streamItems = byId('stream-items');
  const streamProgress = byId('stream-progress');
  const streamCurl = byId('stream-curl');
  const clampInt = (el: HTMLInputElement, lo: number, hi: number, dflt: number) => {
    const n = Math.floor(Number(el.value));
    return Number.isFinite(n) && el.value !== '' ? Math.min(hi, Math.max(lo, n)) : dflt;
  };
  const size = () => clampInt(streamSize, 1, 100, 12);
  const delay = () => clampInt(streamDelay, 0, 5000, 400);
  const renderStreamCurl = () => { streamCurl.textContent = curlListUsers(base, size(), delay()); };
  for (const el of [streamSize, streamDelay]) el.addEventListener('input', renderStreamCurl);
  renderStreamCurl();
  showStatus(streamStatus, 'idle');

  let running: AbortController | null = null;
  streamCancel.addEventListener('click', () => running?.abort());

  streamForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (running) return;
    const n = size();
    const d = delay();
    const abort = new AbortController();
    running = abort;
    streamStart.disabled = true;
    streamCancel.disabled = false;
    streamItems.replaceChildren();
    streamItems.dataset.state = 'streaming';
    streamProgress.style.width = '0%';
    showStatus(streamStatus, 'running', 'opening stream…');
    const t0 = performance.now();
    let count = 0;
    let last = t0;
    const recent: string[] = [];
    showReply('stream', null, '');
    try {
      const req = { pageSize: n, follow: true, delay: { seconds: BigInt(Math.floor(d / 1000)), nanos: (d % 1000) * 1e6 } };
      for await (const u of client.listUsers(req, { signal: abort.signal })) {
        const now = performance.now();
        count++;
        streamItems.append(h('li', { 'data-seq': String(count), 'data-t': (now - t0).toFixed(1) },
          h('span', { class: 'seq' }, String(count)),
          h('span', { class: 'avatar small', 'aria-hidden': 'true' }, initials(u.name)),
          h('span', { class: 'item-main' }, h('strong', {}, u.name), h('span', { class: 'muted' }, u.email)),
          h('span', { class: 'item-time' },
            `+${formatMs(now - t0)}`, h('small', {}, count > 1 ? `Δ ${formatMs(now - last)}` : 'first'))));
        last = now;
        recent.push(`{"result":${toJsonString(UserSchema, u)}}`); // the REST stream's NDJSON line
        if (recent.length > 6) recent.shift();
        byId('stream-reply').textContent = recent.join('\n');
        byId('stream-reply-status').textContent = `${count} received`;
        streamItems.scrollTop = streamItems.scrollHeight; // follow the newest row, not the page
        streamProgress.style.width = `${Math.min(100, (100 * count) / n)}%`;
        showStatus(streamStatus, 'running', `streaming… ${count} of ${n} received`);
      }
      showStatus(streamStatus, { code: 0, message: `${count} messages`, ms: performance.now() - t0 });
      streamItems.dataset.state = 'done';
    } catch (e) {
      const o = errorOutcome(e, performance.now() - t0);
      if (o.code === Code.Canceled && abort.signal.aborted)
        o.message = `cancelled by you after ${count} of ${n}`;
      showStatus(streamStatus, o);
      streamItems.dataset.state = o.code === Code.Canceled ? 'cancelled' : 'failed';
    } finally {
      running = null;
      streamStart.disabled = false;
      streamCancel.disabled = true;
    }
  });
}
