import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { overrideState, READ_TOKEN, servedBy, TOKEN_ENV } from '../api/override-support.js';
import { eventually, registerFleet, startFleet, type Fleet } from '../support/fleet.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../support/server.js';
import { type CliRun, collect, runCli, shown, spawnCli } from './cli-support.js';

/**
 * The `waymark` CLI as people run it (bin/waymark.js in a subprocess) against the real Node server over
 * a temp libSQL store, routing service "shop" over three real upstreams (ue1, ew1, as1). One server for
 * the file: each test ends the overrides it makes.
 */
// Each test runs the CLI several times (about half a second of CPU each, more on a busy machine).
vi.setConfig({ testTimeout: 60_000 });

let server: TestServer;
let fleet: Fleet;
let env: Record<string, string>;

beforeAll(async () => {
  fleet = await startFleet();
  server = await startTestServer({ ...TOKEN_ENV, WAYMARK_TRY_TIMEOUT_MS: '1000' });
  await registerFleet(server, fleet);
  env = { WAYMARK_URL: server.url, WAYMARK_TOKEN: ADMIN_TOKEN };
});

afterAll(async () => {
  await server?.close();
  await fleet?.stop();
});

function expectExit(run: CliRun, code: number): void {
  expect(run.code, shown(run)).toBe(code);
}

function parsed(run: CliRun): any {
  expectExit(run, 0);
  return JSON.parse(run.stdout);
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function activeOverrides(): Promise<{ id: string; action: string; reason: string }[]> {
  const res = await server.admin('GET', '/overrides?active=true');
  return res.json.overrides;
}

describe('waymark: settings and usage', () => {
  it('usage errors exit 2 and call no API; --help exits 0; flags win over the environment', async () => {
    const before = await overrideState(server.db);
    const port = await closedPort();
    const [noSettings, badDuration, noReason, unknown, help, flagWins] = await Promise.all([
      runCli(['status']),
      runCli(['drain', 'shop', 'ew1', '--for', '10x', '--reason', 'kernel upgrade'], env),
      runCli(['drain', 'shop', 'ew1', '--for', '10m'], env),
      runCli(['frobnicate'], env),
      runCli(['--help']),
      runCli(['--url', server.url, '--token', ADMIN_TOKEN, 'status', 'shop', '--json'], {
        WAYMARK_URL: `http://127.0.0.1:${port}`,
        WAYMARK_TOKEN: 'wrong-token-0123456789',
      }),
    ]);
    expectExit(noSettings, 2);
    expect(noSettings.stderr).toContain('WAYMARK_URL (or --url) is not set');
    expect(noSettings.stderr).toContain('WAYMARK_TOKEN (or --token) is not set');
    expectExit(badDuration, 2);
    expect(badDuration.stderr).toContain('"10x" is not a duration');
    expect(badDuration.stderr).toContain('30s, 10m, 2h, 1d');
    expectExit(noReason, 2);
    expect(noReason.stderr).toContain("required option '--reason <text>'");
    expectExit(unknown, 2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    expectExit(help, 0);
    for (const command of ['status', 'drain', 'pin', 'overrides', 'end', 'events', 'explain', 'import', 'apply'])
      expect(help.stdout).toContain(command);
    expect(help.stdout).toContain('WAYMARK_URL');
    expect(parsed(flagWins).services[0].name).toBe('shop');
    expect(await overrideState(server.db)).toEqual(before);
  });

  it('an unreachable API exits 4 naming the URL; a wrong token is the API refusing (401, exit 1)', async () => {
    const port = await closedPort();
    const [unreachable, wrongToken] = await Promise.all([
      runCli(['status'], { WAYMARK_URL: `http://127.0.0.1:${port}`, WAYMARK_TOKEN: ADMIN_TOKEN }),
      runCli(['status'], { ...env, WAYMARK_TOKEN: 'wrong-token-0123456789' }),
    ]);
    expectExit(unreachable, 4);
    expect(unreachable.stderr).toContain(`cannot reach http://127.0.0.1:${port}/_waymark/api/v1/services`);
    expect(unreachable.stderr).toContain('ECONNREFUSED');
    expectExit(wrongToken, 1);
    expect(wrongToken.stderr).toMatch(/Unauthorized \(401\): \S/);
    expect(wrongToken.stderr).toMatch(/request id: \S+/);
  });
});

describe('waymark status', () => {
  it('shows, per client region, the clusters with level, share and health; --json the API answers', async () => {
    const [human, json, unknown] = await Promise.all([
      runCli(['status'], env),
      runCli(['status', 'shop', '--json'], env),
      runCli(['status', 'nope'], env),
    ]);
    expectExit(human, 0);
    for (const region of ['eu-west1', 'us-east1', 'ap-southeast1'])
      expect(human.stdout).toContain(`clients in ${region}: total health 100%`);
    expect(human.stdout).toMatch(/ew1\s+eu-west1\s+-\s+0 same-region\s+100\.0%\s+unknown\s+-/);
    const status = parsed(json);
    expect(status.services).toHaveLength(1);
    expect(status.services[0].failover.regions['eu-west1'][0]).toMatchObject({ cluster: 'ew1', share: 100, level: 0 });
    expect(status.services[0].overrides).toEqual([]);
    expectExit(unknown, 1);
    expect(unknown.stderr).toContain('Not found (404): service "nope" does not exist');
  });
});

describe('waymark drain, overrides, events, end: the incident drill', () => {
  it('drains a region for 10 minutes with a reason, shows it everywhere, and ends it by its short id', async () => {
    const drained = await runCli(
      ['drain', 'shop', '--region', 'eu-west1', '--for', '10m', '--reason', 'bad deploy in eu-west1'],
      env,
    );
    expectExit(drained, 0);
    expect(drained.stdout).toContain('Drained shop region eu-west1 for 10m');
    const [override] = await activeOverrides();
    expect(override).toMatchObject({ action: 'drain', reason: 'bad deploy in eu-west1' });
    const row = await server.db.execute('select created_at, expires_at from overrides');
    expect(Number(row.rows[0]?.expires_at) - Number(row.rows[0]?.created_at)).toBe(600_000);
    const shortId = override!.id.slice(0, 8);
    expect(drained.stdout).toContain(`waymark end ${shortId}`);
    await server.runtime.snapshots.refresh();
    expect(await servedBy(server, 'eu-west1')).toBe('ue1');

    const [status, statusJson, events, applied, list] = await Promise.all([
      runCli(['status', 'shop'], env),
      runCli(['status', 'shop', '--json'], env),
      runCli(['events', '--service', 'shop'], env),
      runCli(['events', '--kind', 'override-applied', '--json'], env),
      runCli(['overrides', '--active'], env),
    ]);
    expectExit(status, 0);
    expect(status.stdout).toContain('overrides in force:');
    expect(status.stdout).toMatch(/drain\s+region eu-west1\s+active, ends in 9m \d+s\s+admin\s+bad deploy in eu-west1/);
    expect(status.stdout).toMatch(/ew1\s+eu-west1\s+-\s+0 same-region\s+0\.0%\s+drained/);
    const eu = parsed(statusJson).services[0].failover.regions['eu-west1'];
    expect(eu.find((e: any) => e.cluster === 'ew1')).toMatchObject({ health: 'drained', share: 0 });
    expect(eu.find((e: any) => e.cluster === 'ue1')).toMatchObject({ share: 100 });
    expectExit(events, 0);
    expect(events.stdout).toMatch(/AT\s+SERVICE\s+CLUSTER\s+KIND\s+MESSAGE/);
    expect(events.stdout).toMatch(/shop\s+-\s+override-applied\s+drain shop in eu-west1 .*bad deploy in eu-west1/);
    const appliedEvents = parsed(applied).events;
    expect(appliedEvents.length).toBeGreaterThan(0);
    expect(appliedEvents.every((e: any) => e.kind === 'override-applied')).toBe(true);
    expectExit(list, 0);
    expect(list.stdout).toContain(shortId);

    const ended = await runCli(['end', shortId, '--reason', 'drill over'], env);
    expectExit(ended, 0);
    expect(ended.stdout).toMatch(
      new RegExp(`Ended drain of shop region eu-west1 \\(override ${override!.id}\\); it had 9m \\d+s left`),
    );
    expect(await activeOverrides()).toEqual([]);

    const [again, none, history] = await Promise.all([
      runCli(['end', shortId], env),
      runCli(['overrides', '--active'], env),
      runCli(['overrides', '--service', 'shop', '--json'], env),
    ]);
    expectExit(again, 1);
    expect(again.stderr).toContain(`Override already ended (409): override "${override!.id}" is no longer active`);
    expectExit(none, 0);
    expect(none.stdout.trim()).toBe('No override is in force.');
    expect(parsed(history).overrides[0]).toMatchObject({ id: override!.id, active: false, endedBy: 'admin' });
  });

  it('a refused drain prints the detail and every field with the flag to change; nothing is written', async () => {
    const before = await overrideState(server.db);
    const [invalid, unknownService, readOnly, noTarget] = await Promise.all([
      // With --json the problem document goes to stdout too; the message is the same.
      runCli(['drain', 'shop', 'ew1', '--for', '8d', '--reason', 'x', '--json'], env),
      runCli(['drain', 'nope', 'ew1', '--for', '10m', '--reason', 'kernel upgrade'], env),
      runCli(['drain', 'shop', 'ew1', '--for', '10m', '--reason', 'kernel upgrade'], {
        ...env,
        WAYMARK_TOKEN: READ_TOKEN,
      }),
      runCli(['drain', 'shop', '--for', '10m', '--reason', 'kernel upgrade'], env),
    ]);
    expectExit(invalid, 1);
    expect(invalid.stderr).toContain('Invalid request (400): the body does not match the schema');
    expect(invalid.stderr).toContain('reason (--reason): say why, in a few words');
    expect(invalid.stderr).toMatch(/ttlSeconds \(--for\): .*604800/);
    const problem = JSON.parse(invalid.stdout);
    expect(problem).toMatchObject({ status: 400, code: 'invalid-request' });
    expect(problem.errors.map((e: any) => e.field).sort()).toEqual(['reason', 'ttlSeconds']);
    expectExit(unknownService, 1);
    expect(unknownService.stderr).toContain('service "nope" does not exist');
    expectExit(readOnly, 1);
    expect(readOnly.stderr).toContain('Forbidden (403)');
    expectExit(noTarget, 1);
    expect(noTarget.stderr).toContain('cluster (CLUSTER): a drain names a cluster, a region, or both');
    expect(await overrideState(server.db)).toEqual(before);
  });

  it('pins a client region to a cluster; --json prints the override; end takes the full id', async () => {
    const pinned = await runCli(
      ['pin', 'shop', '--region', 'us-east1', '--cluster', 'ew1', '--for', '2h', '--reason', 'testing ew1', '--json'],
      env,
    );
    const override = parsed(pinned);
    expect(override).toMatchObject({ action: 'pin', region: 'us-east1', cluster: 'ew1', active: true });
    expect(Date.parse(override.expiresAt) - Date.parse(override.createdAt)).toBe(7_200_000);
    await server.runtime.snapshots.refresh();
    expect(await servedBy(server, 'us-east1')).toBe('ew1');
    const ended = parsed(await runCli(['end', override.id, '--json'], env));
    expect(ended).toMatchObject({ id: override.id, active: false, endReason: 'deleted' });
  });

  it('events --follow prints the first page, then each new event as it happens, until Ctrl-C (exit 0)', async () => {
    const child = spawnCli(['events', '--follow', '--interval', '1s', '--service', 'shop'], env);
    const run = collect(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    // Said once the first page is out.
    await eventually(() => stderr.includes('Ctrl-C to stop'), 10_000);
    const created = await server.admin('POST', '/overrides', {
      service: 'shop',
      action: 'drain',
      cluster: 'as1',
      reason: 'followed drain',
      ttlSeconds: 60,
    });
    expect(created.status, created.body).toBe(201);
    await eventually(() => stdout.includes('followed drain'), 10_000);
    child.kill('SIGINT');
    const done = await run;
    expectExit(done, 0);
    // One header: later events continue the table.
    expect(done.stdout.match(/^AT\s+SERVICE/gm)).toHaveLength(1);
    expect(done.stdout).toMatch(/shop\s+as1\s+override-applied\s+drain shop\/as1 .*followed drain/);
    expect(done.stderr).toContain('Ctrl-C to stop');
    await server.admin('DELETE', `/overrides/${created.json.id}`);
  });
});

describe('waymark explain', () => {
  it('tells the decision for a described request; errors name the argument', async () => {
    const [human, json, badPath] = await Promise.all([
      runCli(['explain', 'shop.example.com', '/api/cart', '--region', 'eu-west1', '-H', 'x-test-user: true'], env),
      runCli(['explain', 'shop.example.com', '/', '--region', 'us-east1', '-X', 'post', '--json'], env),
      runCli(['explain', 'shop.example.com', 'no-slash'], env),
    ]);
    expectExit(human, 0);
    expect(human.stdout).toContain('outcome: sent to ew1');
    expect(human.stdout).toContain('host shop.example.com -> service shop');
    expect(human.stdout).toContain('client region: eu-west1');
    expect(human.stdout).toMatch(/ew1\s+eu-west1\s+0 same-region\s+100\.0%\s+unknown/);
    const decision = parsed(json);
    expect(decision).toMatchObject({ service: 'shop', clientRegion: { region: 'us-east1' } });
    expect(decision.candidates[0]).toMatchObject({ cluster: 'ue1', share: 100 });
    expectExit(badPath, 1);
    expect(badPath.stderr).toContain('path (PATH): must start with "/"');
  });
});

describe('waymark import istio', () => {
  it('--dry-run writes nothing; the import writes the routes; bad files and bad YAML are refused', async () => {
    const file = join(server.dir, 'shop-vs.yaml');
    writeFileSync(
      file,
      `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: shop
spec:
  hosts:
  - shop
  http:
  - match:
    - uri:
        prefix: /api
    route:
    - destination:
        host: shop
    timeout: 3s
  - route:
    - destination:
        host: shop
`,
    );
    const bad = join(server.dir, 'bad.yaml');
    writeFileSync(bad, 'kind: VirtualService\nspec: [unclosed\n');
    const before = await overrideState(server.db);
    const [dryRun, missing, invalid] = await Promise.all([
      runCli(['import', 'istio', '-f', file, '--dry-run'], env),
      runCli(['import', 'istio', '-f', join(server.dir, 'nope.yaml')], env),
      runCli(['import', 'istio', '-f', bad], env),
    ]);
    expectExit(dryRun, 0);
    expect(dryRun.stdout).toContain('+ route shop-0 (create)');
    expect(dryRun.stdout).toContain('Dry run: nothing was written.');
    expect(await overrideState(server.db)).toEqual(before);
    expectExit(missing, 2);
    expect(missing.stderr).toContain(`cannot read ${join(server.dir, 'nope.yaml')}`);
    expectExit(invalid, 1);
    expect(invalid.stderr).toContain('Invalid request (400)');

    const imported = parsed(await runCli(['import', 'istio', '-f', file, '--json'], env));
    expect(imported.dryRun).toBe(false);
    expect(imported.services[0].routes.map((r: any) => [r.name, r.action])).toEqual([
      ['shop-0', 'create'],
      ['shop-1', 'create'],
    ]);
    const routes = await server.admin('GET', '/services/shop/routes');
    expect(routes.json.routes.map((r: any) => r.name)).toEqual(['shop-0', 'shop-1']);
    const again = await runCli(['import', 'istio', '-f', file], env);
    expectExit(again, 0);
    expect(again.stdout).toContain('= route shop-0 (unchanged)');
    expect(again.stdout).toContain('Nothing to change');
    for (const name of ['shop-0', 'shop-1']) await server.admin('DELETE', `/services/shop/routes/${name}`);
  });
});
