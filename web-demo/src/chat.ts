// The Chat panel: UserService.Chat, bidi streaming, through the page over a
// WebSocket (JSON over WebSocket, docs/websocket.md): each message typed is
// sent as one text frame and echoed back by the server as it arrives;
// "Finish" half-closes (an empty text frame), after which the server ends
// the call and its status arrives as the last text frame. Kept apart from
// ui.ts: it needs no transport, only the browser's WebSocket. Text from the
// server is only ever inserted as text nodes.
import { codeName, formatMs } from './status';

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
}

function item(cls: string, text: string, testid: string): HTMLLIElement {
  const li = document.createElement('li');
  li.className = cls;
  li.dataset.testid = testid;
  li.textContent = text;
  return li;
}

interface ChatStatus { code: number; message: string }

export function startChat(gatewayUrl: string): void {
  const form = byId<HTMLFormElement>('chat-form');
  const input = byId<HTMLInputElement>('chat-text');
  const finish = byId<HTMLButtonElement>('chat-finish');
  const cancel = byId<HTMLButtonElement>('chat-cancel');
  const items = byId<HTMLOListElement>('chat-items');
  const status = byId('chat-status');
  const wsUrl = `${gatewayUrl.replace(/^http/, 'ws')}/demo.v1.UserService/Chat`;
  byId('chat-url').textContent = wsUrl;

  let ws: WebSocket | null = null;
  let started = 0;
  let sent = 0;
  let pending: string[] = [];

  function show(text: string, cls: string, code?: number): void {
    status.className = `status ${cls}`;
    status.replaceChildren();
    if (code !== undefined) {
      status.dataset.code = String(code);
      const b = document.createElement('span');
      b.className = 'badge';
      b.dataset.testid = 'code';
      b.textContent = `${codeName(code)} (${code})`;
      status.append(b);
    } else {
      delete status.dataset.code;
    }
    const m = document.createElement('span');
    m.className = 'status-msg';
    m.textContent = text;
    status.append(m);
  }

  function idle(): void {
    ws = null;
    finish.disabled = true;
    cancel.disabled = true;
  }

  function open(): WebSocket {
    const s = new WebSocket(wsUrl);
    ws = s;
    started = performance.now();
    sent = 0;
    items.replaceChildren();
    items.dataset.state = 'open';
    finish.disabled = false;
    cancel.disabled = false;
    show('connecting…', 'status-running');
    let final: ChatStatus | null = null;
    s.onopen = () => {
      show('open: type a message, or Finish to end the call', 'status-running');
      for (const t of pending) s.send(t);
      pending = [];
    };
    s.onmessage = (e) => {
      let v: Record<string, unknown>;
      try {
        v = JSON.parse(String(e.data));
      } catch {
        return;
      }
      // The status is the last message: {"code","message","details"}.
      if (typeof v.code === 'number' && 'details' in v) {
        final = { code: v.code, message: String(v.message ?? '') };
        return;
      }
      items.append(item('chat-recv', `${String(v.from ?? '?')}: ${String(v.text ?? '')}`, 'chat-reply'));
    };
    s.onclose = (e) => {
      items.dataset.state = 'closed';
      const ms = performance.now() - started;
      if (final)
        show(`${final.message || (final.code === 0 ? 'call ended' : '')} · ${sent} sent · ${formatMs(ms)}`,
          final.code === 0 ? 'status-ok' : 'status-err', final.code);
      else
        show(`closed (${e.code}) without a status`, 'status-err');
      if (ws === s) idle();
    };
    return s;
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text) return;
    const frame = JSON.stringify({ text, sequence: String(++sent) });
    const s = ws ?? open();
    if (s.readyState === WebSocket.OPEN) s.send(frame);
    else pending.push(frame);
    items.append(item('chat-sent', `you: ${text}`, 'chat-sent'));
    input.value = '';
    input.focus();
  });
  finish.addEventListener('click', () => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(''); // half-close
    finish.disabled = true;
  });
  cancel.addEventListener('click', () => {
    ws?.close();
  });
  idle();
  show('No call yet.', 'muted');
}
