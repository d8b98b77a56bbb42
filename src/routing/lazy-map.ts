import type { CompiledService } from './types.js';

/** The keys a lazy map answers for, known up front (a set, or another map's keys). */
type KeySet<K> = Pick<ReadonlySet<K>, 'has' | 'size'> & { keys(): IterableIterator<K> };

/**
 * A map whose keys are known up front and whose values are made the first time something asks for one.
 * A snapshot's services by name are one (a cold isolate compiles the services its requests need, not
 * the whole configuration), and so are a service's plans by client region (an isolate serving one part of
 * the world holds the plans of the regions its clients are in). Iterating makes them all (the health
 * sync, the admin views).
 */
export class LazyMap<K, V> implements ReadonlyMap<K, V> {
  // The first value made is kept in two fields, the rest in a Map made on first use: most of a snapshot's
  // lazy maps are never asked for anything, and most of the rest for one key (a service's plans for the one
  // region an isolate's clients are in), where a Map would cost a hundred bytes or so per service.
  #firstKey: K | undefined;
  #firstValue: V | undefined;
  #made: Map<K, V> | null = null;

  constructor(
    private readonly keySet: KeySet<K>,
    private readonly make: (key: K) => V,
  ) {}

  get(key: K): V | undefined {
    if (key === this.#firstKey && this.#firstKey !== undefined) return this.#firstValue;
    let value = this.#made?.get(key);
    if (value === undefined && this.keySet.has(key)) {
      value = this.make(key);
      if (this.#firstKey === undefined) {
        this.#firstKey = key;
        this.#firstValue = value;
      } else (this.#made ??= new Map()).set(key, value);
    }
    return value;
  }

  /** The values made so far, as a map of their own (a later snapshot reuses them without holding this one). */
  made(): ReadonlyMap<K, V> {
    const made = new Map(this.#made);
    if (this.#firstKey !== undefined) made.set(this.#firstKey, this.#firstValue as V);
    return made;
  }

  /** How many values have been made so far. */
  get madeCount(): number {
    return (this.#firstKey === undefined ? 0 : 1) + (this.#made?.size ?? 0);
  }

  has(key: K): boolean {
    return this.keySet.has(key);
  }

  get size(): number {
    return this.keySet.size;
  }

  *entries(): MapIterator<[K, V]> {
    for (const key of this.keySet.keys()) yield [key, this.get(key) as V];
  }

  keys(): MapIterator<K> {
    return this.keySet.keys() as MapIterator<K>;
  }

  *values(): MapIterator<V> {
    for (const [, value] of this.entries()) yield value;
  }

  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void): void {
    for (const [key, value] of this.entries()) callback(value, key, this);
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }
}

/** A snapshot's services by name, each compiled on first use. */
export type ServiceIndex = LazyMap<string, CompiledService>;

/** Hosts to services, through the service index: looking a host up compiles only its service. */
export class HostIndex implements ReadonlyMap<string, CompiledService> {
  constructor(
    private readonly serviceOf: ReadonlyMap<string, string>,
    private readonly services: ServiceIndex,
  ) {}

  get(host: string): CompiledService | undefined {
    const name = this.serviceOf.get(host);
    return name === undefined ? undefined : this.services.get(name);
  }

  has(host: string): boolean {
    return this.serviceOf.has(host);
  }

  get size(): number {
    return this.serviceOf.size;
  }

  *entries(): MapIterator<[string, CompiledService]> {
    for (const [host, name] of this.serviceOf) yield [host, this.services.get(name) as CompiledService];
  }

  keys(): MapIterator<string> {
    return this.serviceOf.keys();
  }

  *values(): MapIterator<CompiledService> {
    for (const [, service] of this.entries()) yield service;
  }

  forEach(callback: (value: CompiledService, key: string, map: ReadonlyMap<string, CompiledService>) => void): void {
    for (const [host, service] of this.entries()) callback(service, host, this);
  }

  [Symbol.iterator](): MapIterator<[string, CompiledService]> {
    return this.entries();
  }
}
