import { describe, expect, it } from 'vitest';
import { diffConfig, fieldChanges, sameJson } from '../../src/control/config-diff.js';
import { configDocumentSchema } from '../../src/spec/config.js';

const doc = (services: unknown[]) => configDocumentSchema.parse({ apiVersion: 'waymark/v1', kind: 'Config', services });
const svc = (name: string, extra: Record<string, unknown> = {}) => ({ name, hosts: [`${name}.example.com`], ...extra });
const cl = (name: string, weight = 100) => ({
  name,
  region: 'eu-west1',
  origin: `https://${name}.internal`,
  latitude: 50,
  longitude: 3,
  weight,
});

describe('fieldChanges and sameJson', () => {
  it.each([
    ['equal objects in another key order', { a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 }, []],
    [
      'a nested field',
      { policy: { retries: { attempts: 2 } } },
      { policy: { retries: { attempts: 3 } } },
      [{ path: 'policy.retries.attempts', old: 2, new: 3 }],
    ],
    [
      'an array changes whole',
      { hosts: ['a', 'b'] },
      { hosts: ['a'] },
      [{ path: 'hosts', old: ['a', 'b'], new: ['a'] }],
    ],
    ['a field added', { a: 1 }, { a: 1, zone: 'b' }, [{ path: 'zone', old: null, new: 'b' }]],
    ['a field removed', { a: 1, timeoutMs: 5 }, { a: 1 }, [{ path: 'timeoutMs', old: 5, new: null }]],
  ])('%s', (_, a, b, expected) => {
    expect(fieldChanges(a, b)).toEqual(expected);
    expect(sameJson(a, b)).toBe(expected.length === 0);
  });
});

describe('diffConfig', () => {
  const current = doc([svc('a', { clusters: [cl('a1'), cl('a2')] }), svc('b', { clusters: [cl('b1')] })]);

  it('creates, updates and unchanged in write order; without prune, what the document lacks is left out', () => {
    const changes = diffConfig(current, doc([svc('a', { clusters: [cl('a1', 5)] }), svc('c')]), false);
    expect(changes.map((c) => `${c.action} ${c.kind} ${c.service}/${c.name}`)).toEqual([
      'unchanged service a/',
      'create service c/',
      'update cluster a/a1',
    ]);
  });

  it('with prune, deletions come last: routes, then clusters, then services', () => {
    const changes = diffConfig(current, doc([svc('a', { clusters: [cl('a1')] })]), true);
    expect(changes.filter((c) => c.action === 'delete').map((c) => `${c.kind} ${c.service}/${c.name}`)).toEqual([
      'cluster a/a2',
      'cluster b/b1',
      'service b/',
    ]);
  });

  it('the same document is all unchanged, whatever its hosts order or spelled-out defaults', () => {
    const same = doc([
      svc('a', { clusters: [cl('a2'), cl('a1')], failover: [], policy: {}, subsets: {} }),
      svc('b', { clusters: [{ ...cl('b1'), zone: null, labels: {} }] }),
    ]);
    expect(diffConfig(current, same, true).every((c) => c.action === 'unchanged')).toBe(true);
  });
});
