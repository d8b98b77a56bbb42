import { type OriginParts, splitOrigin } from './origin.js';
import type { Cluster, ClusterHealth, ClusterSpec } from './types.js';

/**
 * A compiled cluster: what the hot path reads of a configured cluster, held by reference to its spec rather
 * than copied. A snapshot of 10,000 services x 20 clusters holds 200,000 of them, so every field costs 1.6 MB
 * (Node's V8 has 8-byte slots): the fields the spec has already are getters, and `key` is made the first
 * time outlier detection asks for it (most clusters of a large snapshot are never tried).
 */
export class CompiledCluster implements Cluster {
  readonly #spec: ClusterSpec;
  #key: string | undefined;
  /** null: the spec's origin as stored, no base path (almost every cluster). */
  readonly #parts: OriginParts | null;

  constructor(
    readonly service: string,
    spec: ClusterSpec,
    readonly drained: boolean,
    /** The spec's weight, or the weight a locality distribution gives it (see `withWeight`). */
    readonly weight: number = spec.weight,
  ) {
    this.#spec = spec;
    const parts = splitOrigin(spec.origin);
    this.#parts = parts.origin === spec.origin && parts.basePath === '' ? null : parts;
  }

  get origin(): string {
    return this.#parts?.origin ?? this.#spec.origin;
  }
  get basePath(): string {
    return this.#parts?.basePath ?? '';
  }

  get name(): string {
    return this.#spec.name;
  }
  get key(): string {
    this.#key ??= `${this.service}/${this.#spec.name}`;
    return this.#key;
  }
  get region(): string {
    return this.#spec.region;
  }
  get zone(): string | null {
    return this.#spec.zone ?? null;
  }
  get originHost(): string | null {
    return this.#spec.originHost ?? null;
  }
  get labels(): Readonly<Record<string, string>> {
    return this.#spec.labels;
  }
  get health(): ClusterHealth {
    return this.#spec.health ?? 'unknown';
  }

  /** The same cluster with another weight (a locality distribution's share of it). */
  withWeight(weight: number): CompiledCluster {
    return new CompiledCluster(this.service, this.#spec, this.drained, weight);
  }
}
