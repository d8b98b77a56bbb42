import { SELF } from 'cloudflare:test';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { admin, ctl, DUBLIN, eventually, origins } from './support.js';

/**
 * WebSocket handshakes through the worker inside workerd, on a service of its own (ws.example.com):
 * the cluster nearest to Dublin (eu-west1) refuses every handshake with 503, the echo origin sits in
 * us-east1. Route `limited` (x-policy: limited) reaches only the echo origin and holds one connection.
 */
const HOST = 'ws.example.com';
const CLUSTERS = {
  'ws-refusing': {
    region: 'eu-west1',
    latitude: 50.4,
    longitude: 3.8,
    origin: origins.refusing,
    labels: { role: 'refusing' },
  },
  'ws-echo': { region: 'us-east1', latitude: 33.2, longitude: -80.0, origin: origins.echo, labels: { role: 'echo' } },
} as const;
const ROUTES = {
  limited: {
    order: 10,
    match: { headers: { 'x-policy': { exact: 'limited' } } },
    destinations: [{ subset: { role: 'echo' } }],
    maxConcurrent: 1,
  },
};
/** How long a test waits for a message or a close: the origins are local, so anything slower is a failure. */
const WAIT_MS = 2_000;

interface EchoState {
  upgrades: number;
  open: number;
  lastUpgrade: Record<string, string> | null;
}

const echoState = () => ctl('/echo') as Promise<EchoState>;
const refused = async () => ((await ctl('/refusing')) as { refused: number }).refused;

/** Every socket a test accepted, closed after it whatever happened. */
const opened: WebSocket[] = [];

function handshake(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return SELF.fetch(`https://${HOST}${path}`, {
    headers: { upgrade: 'websocket', ...headers },
    cf: DUBLIN,
  } as RequestInit);
}

/** The client's end of an accepted handshake. */
function accept(res: Response): WebSocket {
  const ws = res.webSocket;
  if (!ws) throw new Error(`no webSocket on a ${res.status} response`);
  ws.accept();
  opened.push(ws);
  return ws;
}

function closeEvent(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no close within ${WAIT_MS} ms`)), WAIT_MS);
    ws.addEventListener(
      'close',
      (event) => {
        clearTimeout(timer);
        resolve({ code: event.code, reason: event.reason });
      },
      { once: true },
    );
  });
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message within ${WAIT_MS} ms`)), WAIT_MS);
    ws.addEventListener(
      'message',
      (event) => {
        clearTimeout(timer);
        resolve(typeof event.data === 'string' ? event.data : new TextDecoder().decode(event.data as ArrayBuffer));
      },
      { once: true },
    );
  });
}

/** Closes the client's end and waits until the origin has seen the close too. */
async function closeAndSettle(ws: WebSocket): Promise<void> {
  ws.close(1000, 'done');
  await eventually(async () => (await echoState()).open === 0, WAIT_MS);
}

beforeAll(async () => {
  expect((await admin('PUT', '/services/ws', { hosts: [HOST] })).status).toBeLessThan(300);
  for (const [name, c] of Object.entries(CLUSTERS)) {
    const res = await admin('PUT', `/services/ws/clusters/${name}`, { ...c, healthCheck: { path: '/health/ready' } });
    expect(res.status, await res.text()).toBeLessThan(300);
  }
  for (const [name, body] of Object.entries(ROUTES)) {
    const res = await admin('PUT', `/services/ws/routes/${name}`, body);
    expect(res.status, await res.text()).toBeLessThan(300);
  }
});

afterEach(async () => {
  for (const ws of opened.splice(0)) {
    try {
      ws.close(1000, 'test over');
    } catch {
      // Already closed.
    }
  }
  await eventually(async () => (await echoState()).open === 0, WAIT_MS);
});

afterAll(async () => {
  expect((await admin('DELETE', '/services/ws')).status).toBe(204);
});

describe('WebSocket through the worker inside workerd', () => {
  it('fails over past a cluster that refuses the handshake; the 101 carries the origin socket and echoes', async () => {
    const refusedBefore = await refused();
    const upgradesBefore = (await echoState()).upgrades;
    const res = await handshake('/chat?room=1', { 'x-custom': 'kept' });
    expect(res.status).toBe(101);
    expect(res.headers.get('x-waymark-cluster')).toBe('ws-echo');
    expect(res.headers.get('x-waymark-attempts')).toBe('2');
    expect(await refused()).toBe(refusedBefore + 1);

    const ws = accept(res);
    const reply = nextMessage(ws);
    ws.send('hello');
    expect(await reply).toBe('echo:hello');
    const again = nextMessage(ws);
    ws.send('twice');
    expect(await again).toBe('echo:twice');

    const state = await echoState();
    expect(state.upgrades).toBe(upgradesBefore + 1);
    expect(state.open).toBe(1);
    // The origin saw a handshake for the client's path, not a plain GET with the upgrade stripped.
    expect(state.lastUpgrade).toMatchObject({ upgrade: 'websocket', 'x-custom': 'kept', 'x-forwarded-host': HOST });
    await closeAndSettle(ws);
  });

  it('maxConcurrent: 1 counts an open socket; the slot frees once the client closes it', async () => {
    const first = await handshake('/limited', { 'x-policy': 'limited' });
    expect(first.status).toBe(101);
    expect(first.headers.get('x-waymark-route')).toBe('limited');
    const ws = accept(first);
    const reply = nextMessage(ws);
    ws.send('one');
    expect(await reply).toBe('echo:one');

    const second = await handshake('/limited', { 'x-policy': 'limited' });
    expect(second.status).toBe(503);
    expect(second.headers.get('x-waymark-overflow')).toBe('1');
    expect(second.webSocket).toBeNull();
    await second.arrayBuffer();

    await closeAndSettle(ws);
    let third: Response | undefined;
    await eventually(async () => {
      const res = await handshake('/limited', { 'x-policy': 'limited' });
      if (res.status === 101) third = res;
      else await res.arrayBuffer();
      return res.status === 101;
    }, WAIT_MS);
    const next = accept(third as Response);
    const echoed = nextMessage(next);
    next.send('three');
    expect(await echoed).toBe('echo:three');
    await closeAndSettle(next);
  });

  it('maxConcurrent: the origin closing frees the slot too, and the client gets its close code', async () => {
    const first = await handshake('/limited', { 'x-policy': 'limited' });
    expect(first.status).toBe(101);
    const ws = accept(first);
    const closed = closeEvent(ws);
    ws.send('bye');
    expect(await closed).toEqual({ code: 4000, reason: 'origin says bye' });
    await eventually(async () => (await echoState()).open === 0, WAIT_MS);

    const second = await handshake('/limited', { 'x-policy': 'limited' });
    expect(second.status).toBe(101);
    const next = accept(second);
    const echoed = nextMessage(next);
    next.send('after');
    expect(await echoed).toBe('echo:after');
    await closeAndSettle(next);
  });
});
