import { parseAllDocuments } from 'yaml';
import type { FieldError } from '../problem.js';
import { fieldErrors } from '../api/problem.js';
import { routePutSchema } from '../spec/route.js';
import { policySchema } from '../spec/service.js';
import type { StoredPolicy } from '../routing/policy.js';
import type { FailoverRule, RouteSpec, ServiceSubsets } from '../routing/types.js';
import { readDestinationRule, type DestinationRuleImport } from './destination-rule.js';
import { Fields, Loc, Report, isObj, type Obj } from './reader.js';
import { readVirtualService, type RouteDraft } from './virtual-service.js';

/** A route to write, and the Istio field it came from. */
interface PlannedRoute {
  route: RouteSpec;
  source: string;
}

/** What an import writes for one Waymark service. */
export interface PlannedService {
  name: string;
  /** Upserted by name; the service's other routes are left as they are. */
  routes: PlannedRoute[];
  /** Policy fields to set over the stored policy; undefined: the policy is left as it is. */
  policy?: StoredPolicy;
  /** Failover rules to set, replacing stored rules with the same `from`; undefined: none. */
  failover?: FailoverRule[];
  /** A DestinationRule's subsets, set over the stored ones by name; undefined: no DestinationRule. */
  subsets?: ServiceSubsets;
}

export interface IstioImportPlan {
  services: PlannedService[];
  /** Everything in the YAML that Waymark cannot honour, each naming its field. */
  warnings: string[];
}

export type IstioImportResult = { ok: true; plan: IstioImportPlan } | { ok: false; errors: FieldError[] };

const ISTIO_GROUP = 'networking.istio.io';
const ISTIO_VERSIONS = new Set(['v1', 'v1beta1', 'v1alpha3']);
type Kind = 'VirtualService' | 'DestinationRule';
const KINDS: ReadonlySet<string> = new Set<Kind>(['VirtualService', 'DestinationRule']);
const BODY = new Loc('(body)');

/** The Waymark policy fields, by the Istio field they come from (to name the Istio field in errors). */
const POLICY_SOURCES: Readonly<Record<string, string>> = {
  panicThresholdPercent: 'trafficPolicy.outlierDetection.minHealthPercent',
  'outlierDetection.consecutiveFailures': 'trafficPolicy.outlierDetection.consecutive5xxErrors',
  'outlierDetection.intervalMs': 'trafficPolicy.outlierDetection.interval',
  'outlierDetection.baseEjectionMs': 'trafficPolicy.outlierDetection.baseEjectionTime',
  'outlierDetection.maxEjectionMs': 'trafficPolicy.outlierDetection.maxEjectionTime',
  'outlierDetection.maxEjectionPercent': 'trafficPolicy.outlierDetection.maxEjectionPercent',
  maxConcurrent: 'trafficPolicy.connectionPool',
  distribute: 'trafficPolicy.loadBalancer.localityLbSetting.distribute',
};

interface Resource {
  /** Document order, for listing errors and warnings. */
  position: number;
  kind: Kind;
  name: string;
  /** `VirtualService reviews`: how errors and warnings name it. */
  owner: string;
  spec: Fields;
}

/**
 * Plans the import of Istio VirtualServices and DestinationRules (YAML, one or more documents) as
 * Waymark routes, service subsets, policy and failover rules. Pure: reads nothing, writes nothing.
 * Decides the service of each object (the first label of the VirtualService's `hosts[0]`, the
 * DestinationRule's `host`), one route per `http[]` entry (or per match block, as Istio ORs them)
 * ordered 10 apart in document order, subsets named as the service's (those `stored` on the existing
 * services, by service name, and those the YAML's DestinationRules define), and a warning for every
 * field Waymark cannot honour. As `kubectl apply` takes them, DestinationRules may come in an earlier
 * import than the VirtualServices naming their subsets. Objects that are not a service's own routing
 * (other kinds, gateway-bound or `*` VirtualServices) are skipped with a warning. Any error (bad YAML,
 * unknown subset, a value Waymark refuses) fails the whole plan.
 */
export function planIstioImport(
  yamlText: string,
  stored: ReadonlyMap<string, ServiceSubsets> = new Map(),
): IstioImportResult {
  const report = new Report();
  const resources = readDocuments(yamlText, report).flatMap((o) => readResource(o.value, o.where, report));
  report.position = Number.MAX_SAFE_INTEGER;
  if (report.errors.length) return { ok: false, errors: report.errors };

  const appearance: string[] = [];
  const seen = (service: string) => {
    if (!appearance.includes(service)) appearance.push(service);
  };
  // DestinationRules first: VirtualServices anywhere in the YAML may name their subsets.
  const rules = new Map<string, DestinationRuleImport & { owner: string }>();
  const ruleServices = new Map<Resource, string>();
  for (const r of resources) {
    if (r.kind !== 'DestinationRule') continue;
    report.position = r.position;
    const rule = readDestinationRule(r.spec, report);
    if (!rule) continue;
    ruleServices.set(r, rule.service);
    const first = rules.get(rule.service);
    if (first)
      report.error(
        rule.at,
        `is service "${rule.service}", which ${first.owner} already configures: give one DestinationRule per host`,
      );
    else rules.set(rule.service, { ...rule, owner: r.owner });
  }

  const catalog = new Map([...rules].map(([service, rule]) => [service, { owner: rule.owner, subsets: rule.subsets }]));
  const positions = new Map<string, number>();
  const nextPosition = (service: string) => {
    const p = positions.get(service) ?? 0;
    positions.set(service, p + 1);
    return p;
  };
  const drafts = new Map<string, RouteDraft[]>();
  for (const r of resources) {
    if (r.kind === 'DestinationRule') {
      const service = ruleServices.get(r);
      if (service) seen(service);
      continue;
    }
    report.position = r.position;
    const vs = readVirtualService(r.name, r.spec, { subsets: catalog, stored, nextPosition, report });
    if (!vs) continue;
    seen(vs.service);
    drafts.set(vs.service, [...(drafts.get(vs.service) ?? []), ...vs.routes]);
  }

  report.position = Number.MAX_SAFE_INTEGER;
  const services = appearance.map((name) => planService(name, drafts.get(name) ?? [], rules.get(name), report));
  if (report.errors.length) return { ok: false, errors: report.errors };
  if (services.length === 0 && report.warnings.length === 0) {
    return {
      ok: false,
      errors: [
        {
          field: BODY.field,
          message:
            'holds no Kubernetes object: expected networking.istio.io VirtualService and DestinationRule documents',
        },
      ],
    };
  }
  return { ok: true, plan: { services, warnings: report.warnings } };
}

/** The YAML documents that hold something, each named `document <n>`; YAML errors name `(body)`. */
function readDocuments(text: string, report: Report): { value: Obj; where: string }[] {
  const out: { value: Obj; where: string }[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    const where = `document ${i + 1}`;
    if (doc.errors.length) {
      // The parser's message says where ("at line 3, column 5"); its source excerpt is left out.
      for (const e of doc.errors)
        report.error(BODY, `is not valid YAML: ${(e.message.split('\n')[0] ?? '').replace(/:$/, '')}`);
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      report.error(BODY, `is not valid YAML (${where}): ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    if (value === null || value === undefined) return;
    if (isObj(value)) out.push({ value, where });
    else report.error(BODY, `${where} is not a Kubernetes object (a mapping with apiVersion, kind, metadata and spec)`);
  });
  return out;
}

/** A document as Istio resources to import: a List is unpacked, other kinds are skipped with a warning. */
function readResource(value: Obj, where: string, report: Report): Resource[] {
  report.position += 1;
  const doc = new Fields(value, new Loc(where), report);
  const kind = doc.str('kind');
  const apiVersion = doc.str('apiVersion');
  if (kind === undefined || apiVersion === undefined) {
    report.error(doc.at, 'is not a Kubernetes object: apiVersion and kind are required');
    return [];
  }
  if (kind === 'List' && Array.isArray(value.items)) {
    return value.items.flatMap((item, i) => {
      const at = `${where} items[${i}]`;
      if (isObj(item)) return readResource(item, at, report);
      report.error(new Loc(at), 'is not a Kubernetes object');
      return [];
    });
  }
  const metadata = value.metadata;
  const name = isObj(metadata) && typeof metadata.name === 'string' ? metadata.name : undefined;
  const [group, version] = apiVersion.split('/');
  if (group !== ISTIO_GROUP || !KINDS.has(kind)) {
    report.warn(
      doc.at,
      `(${apiVersion} ${kind}${name ? ` ${name}` : ''}) is skipped: Waymark imports networking.istio.io VirtualService and DestinationRule only`,
    );
    return [];
  }
  if (!version || !ISTIO_VERSIONS.has(version)) {
    report.error(
      doc.at.key('apiVersion'),
      `"${apiVersion}" is not supported: use ${ISTIO_GROUP}/v1, v1beta1 or v1alpha3`,
    );
    return [];
  }
  if (name === undefined) {
    report.error(doc.at.key('metadata.name'), 'is required');
    return [];
  }
  const owner = `${kind} ${name}`;
  const spec = value.spec;
  if (!isObj(spec)) {
    report.error(new Loc(owner, 'spec'), spec === undefined ? 'is required' : 'must be a mapping');
    return [];
  }
  return [
    { position: report.position, kind: kind as Kind, name, owner, spec: new Fields(spec, new Loc(owner), report) },
  ];
}

/** Validates a service's routes against the admin API's route schema, and its policy and failover. */
function planService(
  name: string,
  drafts: RouteDraft[],
  rule: (DestinationRuleImport & { owner: string }) | undefined,
  report: Report,
): PlannedService {
  const planned: PlannedService = { name, routes: [] };
  if (rule && drafts.length === 0 && rule.routeExtrasAt) {
    report.warn(
      rule.routeExtrasAt,
      `applies to routes, and this import has no VirtualService for service "${name}": it is not imported`,
    );
  }
  const sources = new Map<string, string>();
  for (const draft of drafts) {
    const other = sources.get(draft.name);
    if (other) {
      report.fail(
        draft.source,
        `gives route name "${draft.name}" for service "${name}", as ${other} does: name the http routes apart`,
      );
      continue;
    }
    sources.set(draft.name, draft.source);
    const body = {
      order: draft.order,
      ...draft.body,
      ...(rule?.affinity ? { affinity: rule.affinity } : {}),
    };
    const parsed = routePutSchema.safeParse(body);
    if (!parsed.success) {
      for (const e of fieldErrors(parsed.error, draft.name))
        report.fail(e.field, `${e.message} (from ${draft.source})`);
      continue;
    }
    planned.routes.push({ route: { name: draft.name, ...parsed.data }, source: draft.source });
  }
  if (rule) planned.subsets = Object.fromEntries(rule.subsets);
  if (rule?.policy) {
    const parsed = policySchema.safeParse(rule.policy);
    if (parsed.success) planned.policy = parsed.data;
    else {
      for (const e of fieldErrors(parsed.error)) {
        const source = POLICY_SOURCES[e.field];
        report.fail(
          `${rule.owner}: ${source ?? e.field}`,
          source ? `${e.message} (as Waymark's policy.${e.field})` : e.message,
        );
      }
    }
  }
  if (rule?.failover?.length) planned.failover = rule.failover;
  return planned;
}
