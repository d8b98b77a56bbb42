import { silentLogger } from '../../src/observe/log.js';
import { createSyncCoordinator, createWorker } from '../../src/worker.js';

/** The worker under test (SELF): the production handlers with a silent logger, so a green run prints only the report. */
export default createWorker({ log: silentLogger });

/** The WAYMARK_SYNC Durable Object class (wrangler.toml), silent too. */
export const SyncCoordinator = createSyncCoordinator({ log: silentLogger });
