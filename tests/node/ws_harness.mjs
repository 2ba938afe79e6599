// Pieces shared by the WebSocket tests: `ws` as the global WebSocket (what
// @improbable-eng/grpc-web's WebsocketTransport opens), message classes
// with serializeBinary/deserializeBinary over @bufbuild/protobuf (the
// shape google-protobuf's generated classes have, which is all the
// improbable client uses), and a promise-based call helper.
import { createRequire } from 'node:module';
import { generate } from './grpcweb_harness.mjs';

const require = createRequire(import.meta.url);
const { WebSocket } = require('ws');
globalThis.WebSocket = WebSocket;
export const { grpc } = require('@improbable-eng/grpc-web');

export const gen = generate();
const { create, toBinary, fromBinary } = await import('@bufbuild/protobuf');
export const userPb = await import(`${gen}/demo/v1/user_pb.js`);

// A google-protobuf-like class for one message schema.
export function messageClass(schema) {
  return class Msg {
    constructor(init) { this.m = create(schema, init || {}); }
    serializeBinary() { return toBinary(schema, this.m); }
    static deserializeBinary(bytes) {
      const o = new Msg();
      o.m = fromBinary(schema, bytes);
      return o;
    }
  };
}

// The method descriptor the improbable client takes.
export function method(serviceName, methodName, req, res, requestStream, responseStream) {
  return {
    methodName,
    service: { serviceName },
    requestStream,
    responseStream,
    requestType: req,
    responseType: res,
  };
}

export const ChatMessage = messageClass(userPb.ChatMessageSchema);
export const User = messageClass(userPb.UserSchema);
export const CreateUsersSummary = messageClass(userPb.CreateUsersSummarySchema);
export const GetUserRequest = messageClass(userPb.GetUserRequestSchema);
export const Chat = method('demo.v1.UserService', 'Chat', ChatMessage, ChatMessage, true, true);
export const CreateUsers = method('demo.v1.UserService', 'CreateUsers', User,
  CreateUsersSummary, true, false);
export const GetUser = method('demo.v1.UserService', 'GetUser', GetUserRequest, User, false, false);

// Opens a call over the WebSocket transport. Returns { client, messages,
// headers, end } where end resolves to { code, message, trailers }.
export function open(host, desc, metadata = {}) {
  const client = grpc.client(desc, { host, transport: grpc.WebsocketTransport() });
  const r = { client, messages: [], headers: null, waiters: [] };
  r.end = new Promise((resolve) => {
    client.onHeaders((h) => { r.headers = h; });
    client.onMessage((m) => {
      r.messages.push(m);
      const w = r.waiters;
      r.waiters = [];
      for (const f of w) f();
    });
    client.onEnd((code, message, trailers) => {
      r.ended = true;
      const w = r.waiters;
      r.waiters = [];
      for (const f of w) f();
      resolve({ code, message, trailers });
    });
  });
  // Resolves once at least n messages arrived (or the call ended).
  r.waitFor = (n) => new Promise((resolve) => {
    const check = () => {
      if (r.messages.length >= n || r.ended) resolve(r.messages.length);
      else r.waiters.push(check);
    };
    check();
  });
  client.start(new grpc.Metadata(metadata));
  return r;
}
