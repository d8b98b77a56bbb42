import { closeSync, openSync, writeSync } from 'node:fs';
import { startUpstream, type UpstreamMode } from '../scripts/upstream.js';

/**
 * One fake cluster in a process of its own (chaos/procs.ts `startUpstreamProcess`), so that it can be
 * killed with SIGKILL and started again on the same port. Every request's `x-chaos-id` is appended to
 * a file with a synchronous write before the request is answered: the count survives a kill -9.
 * Arguments: name, region, port (0: any), the counts file.
 */
const [name = 'upstream', region = 'us-east1', portArg = '0', countsFile = ''] = process.argv.slice(2);
const counts = openSync(countsFile, 'a');

const upstream = await startUpstream(name, region, Number(portArg), {
  onRequest(req) {
    const id = req.headers['x-chaos-id'];
    if (typeof id === 'string' && id !== '') writeSync(counts, `${id}\n`);
  },
});

interface ModeMessage {
  type: 'mode';
  mode: UpstreamMode;
  delayMs?: number;
  failStatus?: number;
}
interface HealthyMessage {
  type: 'healthy';
  healthy: boolean;
}
type Message = ModeMessage | HealthyMessage | { type: 'stop' };

process.on('message', (m: Message) => {
  if (m.type === 'mode') {
    upstream.mode = m.mode;
    upstream.delayMs = m.delayMs ?? 0;
    upstream.failStatus = m.failStatus ?? 503;
    process.send?.({ type: 'mode-set' });
  } else if (m.type === 'healthy') {
    upstream.healthy = m.healthy;
    process.send?.({ type: 'healthy-set' });
  } else if (m.type === 'stop') {
    void upstream.stop().then(() => {
      closeSync(counts);
      process.exit(0);
    });
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready', port: upstream.port });
