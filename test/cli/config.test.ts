import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../support/server.js';
import { type CliRun, runCli, shown } from './cli-support.js';

/**
 * `waymark apply | diff | export | versions | rollback` (the CLI as a subprocess) against the real Node
 * server's `/config` endpoints over a temp libSQL store, fresh for each test, starting at version 1.
 */
// Each test runs the CLI several times (about half a second of CPU each, more on a busy machine).
vi.setConfig({ testTimeout: 60_000 });

let server: TestServer;
let env: Record<string, string>;

const cluster = (name: string, region: string, latitude: number, longitude: number, extra = {}) => ({
  name,
  region,
  origin: `https://${name}.shop.internal`,
  latitude,
  longitude,
  ...extra,
});

/** Version 1: shop with clusters eu and us and a route legacy. */
const INITIAL = {
  apiVersion: 'waymark/v1',
  kind: 'Config',
  services: [
    {
      name: 'shop',
      hosts: ['shop.example.com'],
      clusters: [cluster('eu', 'eu-west1', 50.4, 3.8), cluster('us', 'us-east1', 33.2, -80)],
      routes: [{ name: 'legacy', order: 90, match: { path: { prefix: '/old' } } }],
    },
  ],
};

/** Version 1 with eu at weight 50, a new cluster ap, no route, and a new service blog. */
const DESIRED = {
  ...INITIAL,
  services: [
    {
      ...INITIAL.services[0]!,
      clusters: [
        cluster('eu', 'eu-west1', 50.4, 3.8, { weight: 50 }),
        cluster('us', 'us-east1', 33.2, -80),
        cluster('ap', 'ap-southeast1', 1.35, 103.8),
      ],
      routes: [],
    },
    { name: 'blog', hosts: ['blog.example.com'], clusters: [cluster('main', 'us-east1', 33.2, -80)] },
  ],
};

beforeEach(async () => {
  server = await startTestServer();
  env = { WAYMARK_URL: server.url, WAYMARK_TOKEN: ADMIN_TOKEN };
  const first = await server.admin('POST', '/config?message=first', INITIAL);
  expect(first.status, first.body).toBe(200);
  expect(first.json.version).toBe(1);
});

afterEach(async () => {
  await server.close();
});

function write(name: string, text: string): string {
  const file = join(server.dir, name);
  writeFileSync(file, text);
  return file;
}

function expectExit(run: CliRun, code: number): void {
  expect(run.code, shown(run)).toBe(code);
}

async function version(): Promise<number> {
  const res = await server.admin('GET', '/config/versions');
  return res.json.versions[0].version;
}

describe('waymark apply --dry-run / diff', () => {
  it('prints + create, ~ update with field: old -> new, - delete, and a summary; writes nothing; diff exits 3', async () => {
    const file = write('desired.yaml', toYaml(DESIRED));
    const [dryRun, diff, diffJson] = await Promise.all([
      runCli(['apply', '-f', file, '--dry-run', '--prune'], env),
      runCli(['diff', '-f', file, '--prune'], env),
      runCli(['diff', '-f', file, '--json'], env),
    ]);
    expectExit(dryRun, 0);
    expect(dryRun.stdout.split('\n')).toEqual([
      '+ service blog',
      '~ cluster shop/eu',
      '    weight: 100 -> 50',
      '+ cluster shop/ap',
      '+ cluster blog/main',
      '- route shop/legacy',
      '3 to create, 1 to update, 1 to delete, 2 unchanged. Dry run against version 1: nothing was written.',
      '',
    ]);
    expectExit(diff, 3);
    expect(diff.stdout).toBe(dryRun.stdout);
    // Without --prune nothing is deleted; --json prints the API's answer, and the exit code still says "changes".
    expectExit(diffJson, 3);
    expect(JSON.parse(diffJson.stdout)).toMatchObject({
      dryRun: true,
      version: 1,
      summary: { create: 3, update: 1, delete: 0, unchanged: 2 },
    });
    expect(await version()).toBe(1);
  });

  it('export, then diff the exported file: no changes, exit 0; export --json; --at an unknown version', async () => {
    const file = join(server.dir, 'exported.yaml');
    const exported = await runCli(['export', '-o', file], env);
    expectExit(exported, 0);
    expect(exported.stderr).toContain(`Wrote ${file} (configuration version 1).`);
    const document = parseYaml(readFileSync(file, 'utf8'));
    expect(document).toMatchObject({ apiVersion: 'waymark/v1', kind: 'Config', services: [{ name: 'shop' }] });
    expect(document.services[0].clusters.map((c: any) => [c.name, c.weight])).toEqual([
      ['eu', 100],
      ['us', 100],
    ]);
    const [diff, stdout, json, missing] = await Promise.all([
      runCli(['diff', '-f', file], env),
      runCli(['export'], env),
      runCli(['export', '--json'], env),
      runCli(['export', '--at', '7'], env),
    ]);
    expectExit(diff, 0);
    expect(diff.stdout.trim()).toBe('No changes: the configuration in force (version 1) already says this.');
    expectExit(stdout, 0);
    expect(stdout.stdout).toBe(readFileSync(file, 'utf8'));
    expectExit(json, 0);
    expect(JSON.parse(json.stdout)).toEqual(document);
    expectExit(missing, 1);
    expect(missing.stderr).toContain('Not found (404): configuration version 7');
  });
});

describe('waymark apply', () => {
  it('applies a JSON document with a message and If-Match; a stale If-Match is refused (412, exit 1)', async () => {
    const file = write('desired.json', JSON.stringify(DESIRED));
    const applied = await runCli(['apply', '-f', file, '-m', 'scale eu down', '--if-match', '1'], env);
    expectExit(applied, 0);
    expect(applied.stdout).toContain('~ cluster shop/eu\n    weight: 100 -> 50\n');
    expect(applied.stdout).toContain('3 created, 1 updated, 0 deleted, 2 unchanged. Applied: now version 2.');
    expect(await version()).toBe(2);
    const eu = await server.admin('GET', '/services/shop/clusters/eu');
    expect(eu.json.weight).toBe(50);

    const [stale, versions, versionsJson] = await Promise.all([
      runCli(['apply', '-f', file, '--if-match', '1'], env),
      runCli(['versions'], env),
      runCli(['versions', '--json'], env),
    ]);
    expectExit(stale, 1);
    expect(stale.stderr).toContain('Precondition failed (412): the configuration is at version 2, not 1');
    expectExit(versions, 0);
    expect(versions.stdout).toMatch(
      /^VERSION\s+AT\s+ACTOR\s+CHANGES\s+MESSAGE\n2\s+\S+ \S+Z\s+admin\s+4\s+scale eu down\n1\s+\S+ \S+Z\s+admin\s+4\s+first\n/,
    );
    expect(JSON.parse(versionsJson.stdout).versions.map((v: any) => v.version)).toEqual([2, 1]);
    expect(await version()).toBe(2);
  });

  it('a refused document prints the detail and each field; stdin works; bad input is a usage error', async () => {
    const invalid = {
      ...DESIRED,
      services: [{ ...DESIRED.services[0]!, clusters: [cluster('eu', 'eu-west1', 0, 0, { weight: 20_000 })] }],
    };
    const [refused, unreadable, badIfMatch] = await Promise.all([
      runCli(['apply', '-f', '-'], env, toYaml(invalid)),
      runCli(['apply', '-f', join(server.dir, 'nope.yaml')], env),
      runCli(['apply', '-f', join(server.dir, 'nope.yaml'), '--if-match', 'latest'], env),
    ]);
    expectExit(refused, 1);
    expect(refused.stderr).toContain('Invalid request (400)');
    expect(refused.stderr).toMatch(/services\.0\.clusters\.0\.weight: .*10000/);
    expectExit(unreadable, 2);
    expect(unreadable.stderr).toContain(`cannot read ${join(server.dir, 'nope.yaml')}`);
    expectExit(badIfMatch, 2);
    expect(badIfMatch.stderr).toContain('must be a configuration version');
    expect(await version()).toBe(1);
  });
});

describe('waymark rollback', () => {
  it('goes back to a version with a reason, printing the diff; the reason is required', async () => {
    const applied = await runCli(['apply', '-f', write('desired.yaml', toYaml(DESIRED)), '--prune'], env);
    expectExit(applied, 0);
    const rolledBack = await runCli(['rollback', '1', '--reason', 'eu cannot take the load at 50'], env);
    expectExit(rolledBack, 0);
    expect(rolledBack.stdout).toContain('~ cluster shop/eu\n    weight: 50 -> 100\n');
    expect(rolledBack.stdout).toContain('+ route shop/legacy');
    expect(rolledBack.stdout).toContain('- service blog');
    expect(rolledBack.stdout).toContain("Rolled back to version 1's configuration: now version 3.");
    const versions = await server.admin('GET', '/config/versions');
    expect(versions.json.versions[0].message).toContain('eu cannot take the load at 50');

    const [noReason, unknown, shortReason] = await Promise.all([
      runCli(['rollback', '1'], env),
      runCli(['rollback', '99', '--reason', 'undo it'], env),
      runCli(['rollback', '1', '--reason', 'x'], env),
    ]);
    expectExit(noReason, 2);
    expect(noReason.stderr).toContain("required option '--reason <text>'");
    expectExit(unknown, 1);
    expect(unknown.stderr).toContain('configuration version 99');
    expectExit(shortReason, 1);
    expect(shortReason.stderr).toContain('reason (--reason): say why, in a few words');
    expect(await version()).toBe(3);
  });
});
