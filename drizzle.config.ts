import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'turso',
  schema: './src/store/schema.ts',
  out: './migrations',
  dbCredentials: {
    url: process.env.WAYMARK_DATABASE_URL ?? 'file:.waymark/waymark.db',
    authToken: process.env.WAYMARK_DATABASE_AUTH_TOKEN,
  },
});
