import { describe, expect, it } from 'vitest';
import { mergeFailover, mergePolicy } from '../../src/istio/merge.js';

describe('mergePolicy', () => {
  it.each([
    { name: 'sets outlier fields one by one over the stored ones', stored: { failClosed: true, outlierDetection: { consecutiveFailures: 5, maxEjectionPercent: 50 } }, imported: { outlierDetection: { consecutiveFailures: 7 } }, merged: { failClosed: true, outlierDetection: { consecutiveFailures: 7, maxEjectionPercent: 50 } } },
    { name: 'a stored policy without outlier detection', stored: {}, imported: { panicThresholdPercent: 30 }, merged: { panicThresholdPercent: 30 } },
    { name: 'keeps the stored panic threshold when the import has none', stored: { panicThresholdPercent: 20 }, imported: { outlierDetection: { baseEjectionMs: 15_000 } }, merged: { panicThresholdPercent: 20, outlierDetection: { baseEjectionMs: 15_000 } } },
  ])('$name', ({ stored, imported, merged }) => {
    expect(mergePolicy(stored, imported)).toEqual(merged);
  });
});

describe('mergeFailover', () => {
  it.each([
    { name: 'appends a new "from"', stored: [{ from: 'eu-west1', to: ['us-east1'] }], imported: [{ from: 'us-east1', to: ['eu-west1'] }], merged: [{ from: 'eu-west1', to: ['us-east1'] }, { from: 'us-east1', to: ['eu-west1'] }] },
    { name: 'replaces the rule for the same "from" in place', stored: [{ from: 'us-east1', to: ['ap-southeast1'] }, { from: 'eu-west1', to: ['us-east1'] }], imported: [{ from: 'us-east1', to: ['eu-west1'] }], merged: [{ from: 'us-east1', to: ['eu-west1'] }, { from: 'eu-west1', to: ['us-east1'] }] },
  ])('$name', ({ stored, imported, merged }) => {
    expect(mergeFailover(stored, imported)).toEqual(merged);
  });
});
