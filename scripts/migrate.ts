/**
 * `npm run db:migrate`: applies migrations/ to WAYMARK_DATABASE_URL (a remote Turso/sqld or a file), under
 * the store's `migrate` lease, so it can run while servers start on the same store.
 */
import { parseSettings, SettingsError } from '../src/settings.js';
import { openStore } from '../src/store/client.js';
import { migrateStore } from '../src/store/migrate.js';

try {
  const settings = parseSettings(process.env);
  const store = openStore(settings.WAYMARK_DATABASE_URL, settings.WAYMARK_DATABASE_AUTH_TOKEN);
  const migrated = await migrateStore(store, { holder: 'db-migrate' });
  store.client.close();
  if (!migrated.ok) throw new Error(migrated.message);
  console.log(`migrations applied to ${settings.WAYMARK_DATABASE_URL.replace(/\/\/[^@/]*@/, '//')}`);
} catch (error) {
  console.error(error instanceof SettingsError ? error.message : error);
  process.exit(1);
}
