import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../../scripts/upstream.js';
import { expectProblem } from '../api/api-support.js';
import { clusterBody, serviceBody, type RegionName } from '../support/factories.js';
import {
  byStatus,
  count,
  deploy,
  expectOk,
  RACE_TIMEOUT_MS,
  TOPOLOGIES,
  type Deployment,
  type Peer,
} from './concurrency-support.js';

/**
 * Admin writes racing each other through real HTTP: each command checks its invariant and writes in one
 * write transaction (src/control/command.ts), so N requests at once get the answers N requests one after
 * another would, on one server, on two server processes sharing a file, and on a remote store.
 */

const SERVICE = 'grid';
const HOST = 'grid.example.com';
const CLUSTERS = Array.from({ length: 20 }, (_, i) => `c${String(i + 1).padStart(2, '0')}`);
const REGION_NAMES: RegionName[] = ['us-east1', 'eu-west1', 'ap-southeast1'];
const regionOf = (i: number) => REGION_NAMES[i % REGION_NAMES.length] as RegionName;

describe.each(TOPOLOGIES)('concurrent admin writes: $name', (topology) => {
  let d: Deployment;
  let upstream: Upstream;

  beforeEach(async () => {
    upstream = await startUpstream('grid-origin', 'us-east1');
    d = await deploy(topology);
  });
  afterEach(async () => {
    await d.close();
    await upstream.stop();
  });

  /** Service `grid` with 20 clusters over three regions, all served by one real upstream. */
  async function registerGrid(): Promise<void> {
    const admin = d.peers[0] as Peer;
    expectOk(await admin.admin('PUT', `/services/${SERVICE}`, serviceBody([HOST])));
    for (const [i, name] of CLUSTERS.entries()) {
      expectOk(
        await admin.admin('PUT', `/services/${SERVICE}/clusters/${name}`, clusterBody(regionOf(i), upstream.url)),
      );
    }
  }

  async function activeOverrides(action: string): Promise<{ cluster: string; region: string | null }[]> {
    const rows = await d.db.execute({
      sql: 'select cluster, region from overrides where service = ? and action = ? and ended_at is null',
      args: [SERVICE, action],
    });
    return rows.rows.map((r) => ({ cluster: String(r.cluster), region: r.region === null ? null : String(r.region) }));
  }

  /**
   * The clusters with a share of each client region's traffic, as `peer` reports them. The failover view
   * reads the store's current revision, so the peer routes with it from then on.
   */
  async function routable(peer: Peer): Promise<Record<string, string[]>> {
    const res = await peer.admin('GET', `/services/${SERVICE}/failover`);
    expect(res.status, res.body).toBe(200);
    const regions = res.json.regions as Record<string, { cluster: string; share: number }[]>;
    return Object.fromEntries(
      Object.entries(regions).map(([region, entries]) => [
        region,
        entries.filter((e) => e.share > 0).map((e) => e.cluster),
      ]),
    );
  }

  async function servedBy(peer: Peer, region: string): Promise<string> {
    const res = await peer.request(HOST, '/', { headers: { 'x-waymark-client-region': region } });
    expect(res.status, res.body).toBe(200);
    return res.headers['x-waymark-cluster'] as string;
  }

  it('20 simultaneous drains of the 20 clusters of one service: 19 accepted, 1 refused would-strand, the last cluster still serves', {
    timeout: RACE_TIMEOUT_MS,
  }, async () => {
    await registerGrid();
    const auditBefore = await count(d.db, "select count(*) as n from audit_log where action = 'override.create'");

    // Before the check and the write shared one transaction, all 20 were accepted on a remote store (4 of 4
    // runs) and the service answered 503: each request checked "would this strand?" against a table none
    // of the others had written to yet.
    const answers = await Promise.all(
      CLUSTERS.map((cluster, i) =>
        d.pick(i).admin('POST', '/overrides', {
          service: SERVICE,
          action: 'drain',
          cluster,
          reason: 'drain them all at once',
          ttlSeconds: 600,
        }),
      ),
    );
    const { status, summary } = byStatus(answers);
    expect(status(201), summary).toHaveLength(19);
    expect(status(409), summary).toHaveLength(1);
    const refused = answers.findIndex((r) => r.status === 409);
    expectProblem(answers[refused]!, 409, 'would-strand');
    const survivor = CLUSTERS[refused] as string;

    // What was accepted is what is stored: 19 drains, one audit entry each, the survivor not among them.
    expect((await activeOverrides('drain')).map((o) => o.cluster).sort()).toEqual(
      CLUSTERS.filter((c) => c !== survivor),
    );
    expect(await count(d.db, "select count(*) as n from audit_log where action = 'override.create'")).toBe(
      auditBefore + 19,
    );

    for (const peer of d.peers) {
      const shares = await routable(peer);
      expect(Object.keys(shares).sort()).toEqual([...REGION_NAMES].sort());
      for (const [region, clusters] of Object.entries(shares))
        expect(clusters, `clients in ${region}`).toEqual([survivor]);
      for (const region of REGION_NAMES) expect(await servedBy(peer, region)).toBe(survivor);
    }
  });

  it('20 simultaneous pins of one client region to 20 different clusters: exactly one accepted, 19 refused conflicting-override', {
    timeout: RACE_TIMEOUT_MS,
  }, async () => {
    await registerGrid();
    const answers = await Promise.all(
      CLUSTERS.map((cluster, i) =>
        d.pick(i).admin('POST', '/overrides', {
          service: SERVICE,
          action: 'pin',
          region: 'eu-west1',
          cluster,
          reason: 'pin eu clients for a test',
          ttlSeconds: 600,
        }),
      ),
    );
    const { status, summary } = byStatus(answers);
    expect(status(201), summary).toHaveLength(1);
    expect(status(409), summary).toHaveLength(19);
    const winner = status(201)[0]!.json.cluster as string;
    for (const res of status(409)) {
      expectProblem(res, 409, 'conflicting-override');
      // Every refusal names the one pin that won.
      expect(res.json.detail).toContain(`to ${winner}`);
    }

    expect(await activeOverrides('pin')).toEqual([{ cluster: winner, region: 'eu-west1' }]);
    for (const peer of d.peers) {
      expect((await routable(peer))['eu-west1']).toEqual([winner]);
      expect(await servedBy(peer, 'eu-west1')).toBe(winner);
    }
  });

  it('12 simultaneous PUTs of different services claiming one host: exactly one created, 11 refused host-taken, the host stored once', async () => {
    const host = 'contested.example.com';
    const names = Array.from({ length: 12 }, (_, i) => `site-${i + 1}`);
    const answers = await Promise.all(
      names.map((name, i) => d.pick(i).admin('PUT', `/services/${name}`, serviceBody([host]))),
    );
    const { status, summary } = byStatus(answers);
    expect(status(201), summary).toHaveLength(1);
    expect(status(409), summary).toHaveLength(11);
    const winner = names[answers.findIndex((r) => r.status === 201)] as string;
    for (const res of status(409)) {
      expectProblem(res, 409, 'host-taken', ['hosts.0']);
      expect(res.json.detail).toBe(`${host} belongs to service "${winner}"`);
    }

    const owners = await d.db.execute({ sql: 'select service from service_hosts where host = ?', args: [host] });
    expect(owners.rows.map((r) => r.service)).toEqual([winner]);
    // The refused ones wrote nothing: one service, one audit entry.
    expect(await count(d.db, "select count(*) as n from services where name like 'site-%'")).toBe(1);
    expect(await count(d.db, "select count(*) as n from audit_log where action = 'service.create'")).toBe(1);
  });
});
