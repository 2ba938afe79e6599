// Development only (build.mjs --mock): the page against an in-memory fake of
// UserService, to work on the layout while no gateway is running. The real
// build and the browser test never include this file.
import { Code, ConnectError, createRouterTransport } from '@connectrpc/connect';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Role, UserSchema, UserService, type User } from 'gw-gen/demo/v1/user_pb';
import { BadRequestSchema } from 'gw-gen/google/rpc/error_details_pb';
import { start } from './ui';

const users: User[] = [
  create(UserSchema, { id: 1n, name: 'Ada Lovelace', email: 'ada@example.com', role: Role.ADMIN, active: true,
    tags: ['math'], createdAt: timestampFromDate(new Date('2024-01-02T03:04:05Z')) }),
  create(UserSchema, { id: 2n, name: 'Alan Turing', email: 'alan@example.com', role: Role.EDITOR, active: true }),
  create(UserSchema, { id: 3n, name: 'Grace Hopper', email: 'grace@example.com', role: Role.VIEWER }),
];

const sleep = (ms: number, signal: AbortSignal) => new Promise<void>((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); reject(new ConnectError('cancelled', Code.Canceled)); });
});

const transport = createRouterTransport(({ service }) => {
  service(UserService, {
    async getUser(req) {
      const u = users.find((x) => x.id === req.id);
      if (!u) throw new ConnectError(`user ${req.id} not found`, Code.NotFound);
      return u;
    },
    async createUser(req) {
      const fieldViolations = [];
      if (!req.name) fieldViolations.push({ field: 'name', description: 'name must not be empty' });
      if (!req.email.includes('@')) fieldViolations.push({ field: 'email', description: 'email must contain an @' });
      if (fieldViolations.length)
        throw new ConnectError('invalid user', Code.InvalidArgument, undefined,
          [{ desc: BadRequestSchema, value: { fieldViolations } }]);
      const u = create(UserSchema, { ...req, id: BigInt(users.length + 1) });
      users.push(u);
      return u;
    },
    async *listUsers(req, ctx) {
      const ms = Number(req.delay?.seconds ?? 0n) * 1000 + (req.delay?.nanos ?? 0) / 1e6;
      for (let i = 0; i < req.pageSize; i++) {
        if (i > 0) await sleep(ms, ctx.signal);
        yield users[i % users.length];
      }
    },
  });
});

start(transport, { gatewayUrl: 'http://127.0.0.1:8080', crossOrigin: false, mock: true });
