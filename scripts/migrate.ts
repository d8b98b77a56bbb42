/** `npm run db:migrate`: applies migrations/ to WAYMARK_DATABASE_URL (a remote Turso/sqld or a file). */
import { migrate } from 'drizzle-orm/libsql/migrator';
import { MIGRATIONS_FOLDER } from '../src/node/server.js';
import { parseSettings, SettingsError } from '../src/settings.js';
import { openStore } from '../src/store/client.js';

try {
  const settings = parseSettings(process.env);
  const store = openStore(settings.WAYMARK_DATABASE_URL, settings.WAYMARK_DATABASE_AUTH_TOKEN);
  await migrate(store.db, { migrationsFolder: MIGRATIONS_FOLDER });
  store.client.close();
  console.log(`migrations applied to ${settings.WAYMARK_DATABASE_URL.replace(/\/\/[^@/]*@/, '//')}`);
} catch (error) {
  console.error(error instanceof SettingsError ? error.message : error);
  process.exit(1);
}
