import { describe, expect, it } from 'vitest';
import { WritePacer } from '../../src/api/write-pacing.js';

describe('WritePacer', () => {
  it('runs writes one at a time, the next one WRITE_GAP x the last one later, letting timers due before then run', async () => {
    let clock = 0;
    let busy = 0;
    const pacer = new WritePacer(
      () => busy,
      () => clock,
      3,
    );
    const order: string[] = [];
    const first = pacer.run(async () => {
      order.push('first starts');
      // The write held the thread for 10 ms: the next may start 30 ms after it ended.
      clock += 10;
      busy += 10;
      setTimeout(() => order.push('a timer 20 ms later'), 20);
      await Promise.resolve();
      order.push('first ends');
      return 1;
    });
    const second = pacer.run(async () => {
      order.push('second starts');
      return 2;
    });
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    expect(order).toEqual(['first starts', 'first ends', 'a timer 20 ms later', 'second starts']);
  });

  it('a lone write waits only for the next turn of the event loop; a failed one does not stop the queue', async () => {
    let clock = 1_000;
    const pacer = new WritePacer(
      () => 0,
      () => clock,
      3,
    );
    const order: string[] = [];
    setImmediate(() => order.push('what was ready'));
    await expect(
      pacer.run(async () => {
        order.push('write');
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    clock += 1_000;
    expect(await pacer.run(async () => 'next')).toBe('next');
    expect(order).toEqual(['what was ready', 'write']);
  });

  it('a write that waited on the network without holding the thread earns no pause', async () => {
    let clock = 0;
    const pacer = new WritePacer(
      () => 5,
      () => clock,
      3,
    );
    const order: string[] = [];
    await pacer.run(async () => {
      clock += 2_000; // two seconds of probes, the thread idle all along
      setTimeout(() => order.push('a timer 5 ms later'), 5);
    });
    await pacer.run(async () => order.push('next write'));
    expect(order).toEqual(['next write']);
  });
});
