import { describe, expect, it } from 'vitest';
import { isWorkerdNoise } from './quiet-workerd.js';

const STACK =
  'stack: /work/node_modules/@cloudflare/workerd-linux-64/bin/workerd@52008e2 /work/node_modules/@cloudflare/workerd-linux-64/bin/workerd@5200ac5\n';

describe('isWorkerdNoise', () => {
  // Records as vitest-pool-workers writes them, one per write (seen in `npm test` runs).
  it.each([
    'exception = workerd/api/web-socket.c++:821: disconnected: WebSocket peer disconnected\n',
    `exception = kj/async-io-unix.c++:1538: disconnected: connect(): Connection refused\n${STACK}`,
    'uncaught exception; source = Uncaught (in promise); stack = Error: Network connection lost.\n',
    `uncaught exception; exception = workerd/jsg/_virtual_includes/iterator/workerd/jsg/value.h:1480: disconnected: jsg.Error: Network connection lost.\n${STACK}`,
  ])('drops %j', (record) => {
    expect(isWorkerdNoise(record)).toBe(true);
  });

  it.each([
    ' FAIL  workers  test/worker/proxy.test.ts > the worker inside workerd > routes\n',
    'AssertionError: expected 502 to be 200 // Object.is equality\n',
    'uncaught exception; source = Uncaught (in promise); stack = TypeError: Cannot read properties of undefined\n',
    `exception = kj/async-io-unix.c++:1538: disconnected: connect(): Connection timed out\n${STACK}`,
    'console warning; message = Called .text() on an HTTP body which does not appear to be text.\n',
    '{"level":"error","message":"unhandled error"}\n',
  ])('keeps %j', (line) => {
    expect(isWorkerdNoise(line)).toBe(false);
  });

  it('keeps bytes (vitest and workerd write strings)', () => {
    expect(
      isWorkerdNoise(
        Buffer.from('exception = workerd/api/web-socket.c++:821: disconnected: WebSocket peer disconnected\n'),
      ),
    ).toBe(false);
  });
});
