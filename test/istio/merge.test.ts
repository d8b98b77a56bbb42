import { describe, expect, it } from 'vitest';
import { mergeFailover, mergePolicy, mergeSubsets, sameConfig } from '../../src/istio/merge.js';

describe('mergePolicy', () => {
  it.each([
    {
      name: 'sets outlier fields one by one over the stored ones',
      stored: { failClosed: true, outlierDetection: { consecutiveFailures: 5, maxEjectionPercent: 50 } },
      imported: { outlierDetection: { consecutiveFailures: 7 } },
      merged: { failClosed: true, outlierDetection: { consecutiveFailures: 7, maxEjectionPercent: 50 } },
    },
    {
      name: 'a stored policy without outlier detection',
      stored: {},
      imported: { panicThresholdPercent: 30 },
      merged: { panicThresholdPercent: 30 },
    },
    {
      name: 'keeps the stored panic threshold when the import has none',
      stored: { panicThresholdPercent: 20 },
      imported: { outlierDetection: { baseEjectionMs: 15_000 } },
      merged: { panicThresholdPercent: 20, outlierDetection: { baseEjectionMs: 15_000 } },
    },
  ])('$name', ({ stored, imported, merged }) => {
    expect(mergePolicy(stored, imported)).toEqual(merged);
  });
});

describe('mergeFailover', () => {
  it.each([
    {
      name: 'appends a new "from"',
      stored: [{ from: 'eu-west1', to: ['us-east1'] }],
      imported: [{ from: 'us-east1', to: ['eu-west1'] }],
      merged: [
        { from: 'eu-west1', to: ['us-east1'] },
        { from: 'us-east1', to: ['eu-west1'] },
      ],
    },
    {
      name: 'replaces the rule for the same "from" in place',
      stored: [
        { from: 'us-east1', to: ['ap-southeast1'] },
        { from: 'eu-west1', to: ['us-east1'] },
      ],
      imported: [{ from: 'us-east1', to: ['eu-west1'] }],
      merged: [
        { from: 'us-east1', to: ['eu-west1'] },
        { from: 'eu-west1', to: ['us-east1'] },
      ],
    },
  ])('$name', ({ stored, imported, merged }) => {
    expect(mergeFailover(stored, imported)).toEqual(merged);
  });
});

describe('mergeSubsets', () => {
  it("a subset of the same name takes the rule's labels; others are kept; new ones are added", () => {
    expect(
      mergeSubsets(
        { v1: { version: 'v1' }, canary: { track: 'canary' } },
        { v1: { version: 'v1', tier: 'gold' }, v2: { version: 'v2' } },
      ),
    ).toEqual({
      v1: { version: 'v1', tier: 'gold' },
      canary: { track: 'canary' },
      v2: { version: 'v2' },
    });
  });
});

describe('sameConfig', () => {
  it.each([
    {
      name: 'keys in another order',
      a: { b: 1, a: { d: [1, 2], c: 'x' } },
      b: { a: { c: 'x', d: [1, 2] }, b: 1 },
      same: true,
    },
    {
      name: 'an undefined field is an absent one (as stored JSON has it)',
      a: { a: 1, b: undefined },
      b: { a: 1 },
      same: true,
    },
    { name: 'list order matters', a: { d: [1, 2] }, b: { d: [2, 1] }, same: false },
    { name: 'a changed value', a: { a: { c: 'x' } }, b: { a: { c: 'y' } }, same: false },
    { name: 'an extra field', a: { a: 1 }, b: { a: 1, b: 2 }, same: false },
  ])('$name', ({ a, b, same }) => {
    expect(sameConfig(a, b)).toBe(same);
  });
});
