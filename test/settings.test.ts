import { describe, expect, it } from 'vitest';
import { parseSettings, SettingsError } from '../src/settings.js';

describe('parseSettings', () => {
  it('applies defaults', () => {
    const s = parseSettings({});
    expect(s).toMatchObject({
      WAYMARK_DATABASE_URL: 'file:.waymark/waymark.db',
      WAYMARK_TRUST_LOCALITY_HEADERS: false,
      WAYMARK_SNAPSHOT_REFRESH_MS: 2000,
      PORT: 8787,
      HOST: '127.0.0.1',
      WAYMARK_TRUSTED_HOPS: 0,
      WAYMARK_DRAIN_MS: 30_000,
      WAYMARK_STREAM_IDLE_MS: 60_000,
      WAYMARK_LOG_LEVEL: 'info',
    });
    expect(s.WAYMARK_ADMIN_TOKEN).toBeUndefined();
  });

  it('parses strings as the runtime gives them', () => {
    const s = parseSettings({
      PORT: '9000',
      WAYMARK_TRUST_LOCALITY_HEADERS: 'true',
      WAYMARK_REGION: 'eu-west1',
      WAYMARK_ADMIN_TOKEN: '',
    });
    expect(s.PORT).toBe(9000);
    expect(s.WAYMARK_TRUST_LOCALITY_HEADERS).toBe(true);
    expect(s.WAYMARK_REGION).toBe('eu-west1');
    expect(s.WAYMARK_ADMIN_TOKEN).toBeUndefined();
  });

  it("parses the node's zone and the colo -> zone map (colo codes in any case, trimmed)", () => {
    const s = parseSettings({
      WAYMARK_ZONE: 'zone1/sub1',
      WAYMARK_COLO_ZONES: ' DUB:eu-west1-a, nrt:ap-northeast1-a ',
    });
    expect(s.WAYMARK_ZONE).toBe('zone1/sub1');
    expect([...s.WAYMARK_COLO_ZONES]).toEqual([
      ['DUB', 'eu-west1-a'],
      ['NRT', 'ap-northeast1-a'],
    ]);
    expect(parseSettings({}).WAYMARK_COLO_ZONES.size).toBe(0);
  });

  it.each(['DUB:eu-west1-a,DUB:eu-west1-b', 'DUBL:eu-west1-a', 'DUB:Bad Zone', ':eu-west1-a'])(
    'refuses WAYMARK_COLO_ZONES=%s naming it',
    (value) => {
      expect(() => parseSettings({ WAYMARK_COLO_ZONES: value })).toThrow(
        /WAYMARK_COLO_ZONES: must be "COLO:zone" pairs/,
      );
    },
  );

  it('WAYMARK_ADMIN_HOSTS: unset means any host; set, hostnames lower-cased, trimmed, without a trailing dot', () => {
    expect(parseSettings({}).WAYMARK_ADMIN_HOSTS).toBeUndefined();
    expect([
      ...(parseSettings({ WAYMARK_ADMIN_HOSTS: ' Admin.Example.com. , admin.internal,' }).WAYMARK_ADMIN_HOSTS ?? []),
    ]).toEqual(['admin.example.com', 'admin.internal']);
  });

  it.each([
    'admin.example.com:8443',
    'https://admin.example.com',
    'admin.example.com/_waymark',
    ',',
    'admin..example.com',
    'admin_host',
  ])('refuses WAYMARK_ADMIN_HOSTS=%s naming it', (value) => {
    expect(() => parseSettings({ WAYMARK_ADMIN_HOSTS: value })).toThrow(
      /WAYMARK_ADMIN_HOSTS: must be hostnames separated by commas/,
    );
  });

  it('retention: events and route samples 14 days, the audit log 365, unless set', () => {
    expect(parseSettings({})).toMatchObject({ WAYMARK_RETENTION_DAYS: 14, WAYMARK_AUDIT_RETENTION_DAYS: 365 });
    expect(parseSettings({ WAYMARK_RETENTION_DAYS: '3650', WAYMARK_AUDIT_RETENTION_DAYS: '36500' })).toMatchObject({
      WAYMARK_RETENTION_DAYS: 3650,
      WAYMARK_AUDIT_RETENTION_DAYS: 36500,
    });
    expect(parseSettings({ WAYMARK_RETENTION_DAYS: '1', WAYMARK_AUDIT_RETENTION_DAYS: '1' })).toMatchObject({
      WAYMARK_RETENTION_DAYS: 1,
      WAYMARK_AUDIT_RETENTION_DAYS: 1,
    });
  });

  it.each([
    ['WAYMARK_RETENTION_DAYS', '0'],
    ['WAYMARK_RETENTION_DAYS', '3651'],
    ['WAYMARK_RETENTION_DAYS', '1.5'],
    ['WAYMARK_AUDIT_RETENTION_DAYS', '0'],
    ['WAYMARK_AUDIT_RETENTION_DAYS', '36501'],
  ])('refuses %s=%s naming it', (name, value) => {
    expect(() => parseSettings({ [name]: value })).toThrow(new RegExp(`${name}:`));
  });

  it('WAYMARK_PROCESSES: 1 unless set; a number of processes or "auto"; anything else names the variable', () => {
    expect(parseSettings({}).WAYMARK_PROCESSES).toBe(1);
    expect(parseSettings({ WAYMARK_PROCESSES: '4' }).WAYMARK_PROCESSES).toBe(4);
    expect(parseSettings({ WAYMARK_PROCESSES: 'auto' }).WAYMARK_PROCESSES).toBe('auto');
    for (const bad of ['0', 'all', '2.5', '257'])
      expect(() => parseSettings({ WAYMARK_PROCESSES: bad })).toThrow(/WAYMARK_PROCESSES/);
  });

  it('names every bad variable', () => {
    const bad = {
      WAYMARK_DATABASE_URL: 'ftp://x',
      PORT: 'eighty',
      WAYMARK_TRUST_LOCALITY_HEADERS: 'yes',
      WAYMARK_ADMIN_TOKEN: 'short',
      WAYMARK_REGION: 'EU West',
      WAYMARK_TRUSTED_HOPS: '-1',
      WAYMARK_DRAIN_MS: 'soon',
      WAYMARK_STREAM_IDLE_MS: '10',
      WAYMARK_LOG_LEVEL: 'loud',
      WAYMARK_ZONE: 'zone1/sub1/x',
      WAYMARK_COLO_ZONES: 'DUB=eu-west1-a',
      WAYMARK_ADMIN_HOSTS: 'admin.example.com:443',
      WAYMARK_RETENTION_DAYS: 'two weeks',
      WAYMARK_AUDIT_RETENTION_DAYS: '0',
    };
    expect(() => parseSettings(bad)).toThrow(SettingsError);
    try {
      parseSettings(bad);
    } catch (error) {
      const message = (error as Error).message;
      for (const name of Object.keys(bad)) expect(message).toContain(`${name}:`);
    }
  });
});
