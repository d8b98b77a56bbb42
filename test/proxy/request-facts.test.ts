import { describe, expect, it } from 'vitest';
import { requestFacts, type Incoming } from '../../src/proxy/handle.js';
import { parseSettings } from '../../src/settings.js';

/** Only what requestFacts reads: headers and request.cf. */
function incoming(headers: Record<string, string>, cf?: Incoming<null>['cf']): Incoming<null> {
  return { header: (name: string) => headers[name] ?? null, cf } as unknown as Incoming<null>;
}

const trusted = parseSettings({
  WAYMARK_TRUST_LOCALITY_HEADERS: 'true',
  WAYMARK_REGION: 'us-east1',
  WAYMARK_ZONE: 'us-east1-a',
  WAYMARK_COLO_ZONES: 'DUB:eu-west1-a',
});
const untrusted = parseSettings({
  WAYMARK_REGION: 'us-east1',
  WAYMARK_ZONE: 'us-east1-a',
  WAYMARK_COLO_ZONES: 'DUB:eu-west1-a',
});
const DUBLIN = { latitude: '53.3', longitude: '-6.3', colo: 'DUB' };

describe('requestFacts: the client zone', () => {
  it.each<
    [string, Incoming<null>, typeof trusted, { clientRegion?: string; clientZone?: string; clientZoneSource?: string }]
  >([
    [
      'a trusted zone header with a region header',
      incoming({ 'x-waymark-client-region': 'us-east1', 'x-waymark-client-zone': 'us-east1-b' }),
      trusted,
      { clientRegion: 'us-east1', clientZone: 'us-east1-b', clientZoneSource: 'header' },
    ],
    [
      "a trusted zone header alone: the node's region, the header's zone",
      incoming({ 'x-waymark-client-zone': 'us-east1-b' }),
      trusted,
      { clientRegion: 'us-east1', clientZone: 'us-east1-b', clientZoneSource: 'header' },
    ],
    [
      "a region header without a zone: no zone (the node's is not the client's)",
      incoming({ 'x-waymark-client-region': 'eu-west1' }),
      trusted,
      { clientRegion: 'eu-west1' },
    ],
    [
      'an invalid zone header is ignored',
      incoming({ 'x-waymark-client-zone': 'a/b/c' }),
      trusted,
      { clientRegion: 'us-east1', clientZone: 'us-east1-a', clientZoneSource: 'node' },
    ],
    [
      "an untrusted zone header: the node's zone",
      incoming({ 'x-waymark-client-zone': 'us-east1-b' }),
      untrusted,
      { clientRegion: 'us-east1', clientZone: 'us-east1-a', clientZoneSource: 'node' },
    ],
    [
      "Workers: the colo's zone when mapped",
      incoming({}, DUBLIN),
      untrusted,
      { clientZone: 'eu-west1-a', clientZoneSource: 'colo' },
    ],
    ['Workers: a colo not in the map has no zone', incoming({}, { ...DUBLIN, colo: 'AMS' }), untrusted, {}],
  ])('%s', (_, req, settings, expected) => {
    const facts = requestFacts(req, 'shop.example.com', settings, 'req-1');
    expect({
      clientRegion: facts.clientRegion,
      clientZone: facts.clientZone,
      clientZoneSource: facts.clientZoneSource,
    }).toEqual({
      clientRegion: undefined,
      clientZone: undefined,
      clientZoneSource: undefined,
      ...expected,
    });
  });
});
