import { describe, expect, it } from 'vitest';
import { alertFromEvent, backoffMs, retryable, wants, type StoredEvent } from '../../src/alerts/alert.js';

const AT = Date.UTC(2026, 11, 1, 10);

function event(kind: string, detail: unknown, extra: Partial<StoredEvent> = {}): StoredEvent {
  return { id: 7, at: AT, service: 'shop', cluster: null, kind, message: 'what happened', detail, ...extra };
}

describe('alertFromEvent', () => {
  it.each([
    ['cluster-state', { from: 'healthy', to: 'unhealthy' }, 'cluster-state'],
    ['shares', {}, 'shares'],
    ['override-applied', {}, 'override-applied'],
    ['override-ended', {}, 'override-ended'],
    ['override-expired', {}, 'override-expired'],
    ['mirror-ramp', { route: 'api', phase: 'halted' }, 'mirror-halted'],
    ['mirror-ramp', { route: 'api', phase: 'ramping' }, null],
    ['mirror-ramp', { route: 'api', phase: 'complete' }, null],
    ['canary', { route: 'api', phase: 'promoted' }, 'canary-promoted'],
    ['canary', { route: 'api', phase: 'rolled-back' }, 'canary-rolled-back'],
    ['canary', { route: 'api', phase: 'ramping' }, null],
    ['canary', null, null],
    ['latency-order', {}, null],
    ['route-pause', {}, null],
  ])('%s %j -> %s', (kind, detail, expected) => {
    expect(alertFromEvent(event(kind, detail))?.kind ?? null).toBe(expected);
  });

  it('says what happened in one Slack line, and keeps the event figures', () => {
    const alert = alertFromEvent(
      event(
        'cluster-state',
        { from: 'healthy', to: 'unhealthy' },
        {
          cluster: 'ew1',
          message: 'ew1 healthy -> unhealthy: 3 failed probes',
        },
      ),
    );
    expect(alert).toEqual({
      id: 'event-7',
      kind: 'cluster-state',
      service: 'shop',
      cluster: 'ew1',
      at: '2026-12-01T10:00:00.000Z',
      message: 'ew1 healthy -> unhealthy: 3 failed probes',
      detail: { from: 'healthy', to: 'unhealthy' },
      text: ':red_circle: shop/ew1 healthy -> unhealthy: 3 failed probes',
    });
    expect(alertFromEvent(event('canary', { phase: 'rolled-back' }))?.text).toBe(':rewind: shop: what happened');
  });
});

describe('wants, retryable, backoffMs', () => {
  it.each([
    [{ events: ['*'], services: null }, { kind: 'shares', service: 'shop' }, true],
    [{ events: ['cluster-state'], services: null }, { kind: 'shares', service: 'shop' }, false],
    [{ events: ['*'], services: ['pay-*'] }, { kind: 'shares', service: 'shop' }, false],
    [{ events: ['*'], services: ['pay-*'] }, { kind: 'shares', service: 'pay-eu' }, true],
    [{ events: ['store-unreachable'], services: ['pay-*'] }, { kind: 'store-unreachable', service: null }, true],
  ] as const)('%j wants %j: %s', (hook, alert, expected) => {
    expect(wants(hook, alert)).toBe(expected);
  });

  it('retries network errors, 5xx, 408 and 429 only; doubles the wait', () => {
    expect([null, 500, 503, 408, 429, 400, 401, 404, 410].map(retryable)).toEqual([
      true,
      true,
      true,
      true,
      true,
      false,
      false,
      false,
      false,
    ]);
    expect([1, 2, 3, 4].map((a) => backoffMs(a, 1_000))).toEqual([1_000, 2_000, 4_000, 8_000]);
  });
});
