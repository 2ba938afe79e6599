// Entry point of the real page: gRPC-Web (binary) over fetch to the gateway.
// The gateway is the page's own origin unless ?gateway=URL names another one,
// in which case the browser uses CORS (see docs/web-demo.md).
import { createGrpcWebTransport } from '@connectrpc/connect-web';
import { start } from './ui';

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

const url = gatewayUrl();
start(createGrpcWebTransport({ baseUrl: url, useBinaryFormat: true }), {
  gatewayUrl: url,
  crossOrigin: url !== location.origin,
  mock: false,
});
