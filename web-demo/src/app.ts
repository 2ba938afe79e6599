// Entry point of the real page: gRPC-Web or Connect (binary) over fetch to
// the gateway. The gateway is the page's own origin unless ?gateway=URL
// names another one, in which case the browser uses CORS (see
// docs/web-demo.md). ?transport=connect picks the Connect protocol
// (connect-web's default transport, GET for GetUser); the switch in the
// header reloads the page with it.
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-web';
import type { Transport } from '@connectrpc/connect';
import { start } from './ui';
import { startChat } from './chat';

type Choice = 'grpc-web' | 'connect';

function gatewayUrl(): string {
  const param = new URLSearchParams(location.search).get('gateway');
  if (param) {
    try {
      return new URL(param).origin;
    } catch {
      console.warn(`ignoring ?gateway=${param}: not an absolute URL`);
    }
  }
  return location.origin;
}

function transportChoice(): Choice {
  return new URLSearchParams(location.search).get('transport') === 'connect' ? 'connect' : 'grpc-web';
}

function makeTransport(choice: Choice, baseUrl: string): Transport {
  if (choice === 'connect')
    return createConnectTransport({ baseUrl, useBinaryFormat: true, useHttpGet: true });
  return createGrpcWebTransport({ baseUrl, useBinaryFormat: true });
}

// The header's switch: shows the current choice and reloads with the other.
function wireSwitch(choice: Choice): void {
  const select = document.getElementById('transport') as HTMLSelectElement | null;
  const desc = document.getElementById('client-desc');
  const proto = document.getElementById('browser-proto');
  if (desc) {
    const code = document.createElement('code');
    code.textContent = '@connectrpc/connect-web';
    desc.replaceChildren(code, choice === 'connect'
      ? ' Connect transport, binary protobuf (GET for GetUser)'
      : ' gRPC-Web transport, binary protobuf');
  }
  const label = choice === 'connect' ? 'Connect' : 'gRPC-Web';
  if (proto) proto.textContent = `${label} · HTTP/1.1`;
  // The route lines under each curl pane name the call the page makes.
  for (const el of Array.from(document.querySelectorAll('.route .verb-rpc'))) {
    el.textContent = label;
    const code = el.nextElementSibling;
    if (choice === 'connect' && code?.textContent?.endsWith('/GetUser'))
      code.textContent = 'GET /demo.v1.UserService/GetUser?connect=v1&encoding=proto&base64=1&message=…';
  }
  if (!select) return;
  select.value = choice;
  select.addEventListener('change', () => {
    const next = new URL(location.href);
    next.searchParams.set('transport', select.value);
    location.assign(next.href);
  });
}

const url = gatewayUrl();
const choice = transportChoice();
wireSwitch(choice);
start(makeTransport(choice, url), {
  gatewayUrl: url,
  crossOrigin: url !== location.origin,
  mock: false,
});
startChat(url);
