// The REST twin of each call the page makes, as a curl command line. The
// routes come from the google.api.http annotations in user.proto, which the
// gateway reads from the descriptor set at run time:
//   GetUser    GET  /v1/users/{id}
//   CreateUser POST /v1/users   body "*"
//   ListUsers  GET  /v1/users   (query: pageSize, delay, follow, role)

// Single-quotes a word for a POSIX shell; a quote inside becomes '\''.
export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// A google.protobuf.Duration in its JSON form: "0.25s", "2s".
export function durationJson(ms: number): string {
  const s = (ms / 1000).toFixed(3).replace(/\.?0+$/, '');
  return `${s}s`;
}

export function curlGetUser(base: string, id: string): string {
  return `curl -s ${shellQuote(`${base}/v1/users/${encodeURIComponent(id)}`)}`;
}

export function curlCreateUser(base: string, body: Record<string, unknown>): string {
  return [
    `curl -s -X POST ${shellQuote(`${base}/v1/users`)}`,
    `  -H 'Content-Type: application/json'`,
    // Pretty JSON inside one single-quoted word: still one argument to curl.
    `  -d ${shellQuote(JSON.stringify(body, null, 2).replace(/\n/g, '\n  '))}`,
  ].join(' \\\n');
}

export function curlListUsers(base: string, pageSize: number, delayMs: number): string {
  // follow=true: a live feed that starts over from the first user after the
  // last, so any number of messages can be watched (a plain page ends).
  const q = new URLSearchParams({ pageSize: String(pageSize), delay: durationJson(delayMs), follow: 'true' });
  // -N: print each streamed message as it arrives instead of buffering.
  return `curl -sN ${shellQuote(`${base}/v1/users?${q.toString()}`)}`;
}
