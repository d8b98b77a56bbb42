import type { CompiledService } from './types.js';

/**
 * A snapshot's services by name, compiled the first time something asks for one: a cold isolate
 * compiles the services its requests need, not the whole configuration, and the first response waits
 * for one service's compile at most. Iterating compiles them all (the health sync, the admin views).
 */
export class ServiceIndex implements ReadonlyMap<string, CompiledService> {
  readonly #compiled = new Map<string, CompiledService>();

  constructor(
    private readonly names: ReadonlySet<string>,
    private readonly compile: (name: string) => CompiledService,
  ) {}

  get(name: string): CompiledService | undefined {
    let service = this.#compiled.get(name);
    if (service === undefined && this.names.has(name)) {
      service = this.compile(name);
      this.#compiled.set(name, service);
    }
    return service;
  }

  /** The service if it was compiled already; never compiles (a later snapshot reuses what is here). */
  compiledOnly(name: string): CompiledService | undefined {
    return this.#compiled.get(name);
  }

  /** How many services have been compiled so far. */
  get compiledCount(): number {
    return this.#compiled.size;
  }

  has(name: string): boolean {
    return this.names.has(name);
  }

  get size(): number {
    return this.names.size;
  }

  *entries(): MapIterator<[string, CompiledService]> {
    for (const name of this.names) yield [name, this.get(name) as CompiledService];
  }

  keys(): MapIterator<string> {
    return this.names.values();
  }

  *values(): MapIterator<CompiledService> {
    for (const [, service] of this.entries()) yield service;
  }

  forEach(callback: (value: CompiledService, key: string, map: ReadonlyMap<string, CompiledService>) => void): void {
    for (const [name, service] of this.entries()) callback(service, name, this);
  }

  [Symbol.iterator](): MapIterator<[string, CompiledService]> {
    return this.entries();
  }
}

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
