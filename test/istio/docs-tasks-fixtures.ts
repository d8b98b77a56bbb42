/**
 * The Istio resources of Istio's traffic-management tasks (request routing, fault injection, traffic
 * shifting, request timeouts, mirroring), written for these tests with the same meaning as the files
 * the tasks apply (see /work/shared/conformance/istio-samples/PROVENANCE.md), one file per
 * `kubectl apply` step.
 */

/** A mesh VirtualService for `host` whose `http` entries are given as YAML (indented for `http:`). */
function virtualService(name: string, host: string, http: string, apiVersion = 'networking.istio.io/v1'): string {
  return `apiVersion: ${apiVersion}
kind: VirtualService
metadata: {name: ${name}}
spec:
  hosts: [${host}]
  http:
${http.replace(/^(?=.)/gm, '  ')}`;
}

/** A DestinationRule for `host` with one subset per version, each selecting `version: <name>`. */
function destinationRule(
  name: string,
  host: string,
  versions: string[],
  apiVersion = 'networking.istio.io/v1',
): string {
  return `apiVersion: ${apiVersion}
kind: DestinationRule
metadata: {name: ${name}}
spec:
  host: ${host}
  subsets:
${versions.map((v) => `  - {name: ${v}, labels: {version: ${v}}}`).join('\n')}
`;
}

const route = (host: string, subset: string) => `- route:\n  - destination: {host: ${host}, subset: ${subset}}\n`;

/** Documents as one file, the way `kubectl apply -f` reads them. */
const file = (...documents: string[]) => documents.join('---\n');

/** Request routing, step 1 (and the start of every other Bookinfo task): a subset per version of each service. */
export const BOOKINFO_DESTINATION_RULES = file(
  destinationRule('productpage', 'productpage', ['v1']),
  destinationRule('reviews', 'reviews', ['v1', 'v2', 'v3']),
  destinationRule('ratings', 'ratings', ['v1', 'v2', 'v2-mysql', 'v2-mysql-vm']),
  destinationRule('details', 'details', ['v1', 'v2']),
);

/** Request routing, step 2: every service to its v1. */
export const BOOKINFO_ALL_V1 = file(
  virtualService('productpage', 'productpage', route('productpage', 'v1')),
  virtualService('reviews', 'reviews', route('reviews', 'v1')),
  virtualService('ratings', 'ratings', route('ratings', 'v1')),
  virtualService('details', 'details', route('details', 'v1')),
);

const JASON = `- match:\n  - headers:\n      end-user: {exact: jason}\n`;

/** Request routing, step 3: the user jason sees reviews v2; everyone else v1. */
export const REVIEWS_JASON_V2 = virtualService(
  'reviews',
  'reviews',
  `${JASON}  route:\n  - destination: {host: reviews, subset: v2}\n${route('reviews', 'v1')}`,
);

/** Fault injection, step 1: jason's calls to ratings wait 7 s. */
export const RATINGS_JASON_DELAY_7S = virtualService(
  'ratings',
  'ratings',
  `${JASON}  fault:\n    delay:\n      fixedDelay: 7s\n      percentage: {value: 100.0}\n  route:\n  - destination: {host: ratings, subset: v1}\n${route('ratings', 'v1')}`,
);

/** Fault injection, step 2: jason's calls to ratings fail with 500. */
export const RATINGS_JASON_ABORT_500 = virtualService(
  'ratings',
  'ratings',
  `${JASON}  fault:\n    abort:\n      httpStatus: 500\n      percentage: {value: 100.0}\n  route:\n  - destination: {host: ratings, subset: v1}\n${route('ratings', 'v1')}`,
);

/** Traffic shifting, step 1: half of reviews to v1, half to v3. */
export const REVIEWS_HALF_V1_HALF_V3 = virtualService(
  'reviews',
  'reviews',
  `- route:\n  - destination: {host: reviews, subset: v1}\n    weight: 50\n  - destination: {host: reviews, subset: v3}\n    weight: 50\n`,
);

/** Traffic shifting, step 2: all of reviews to v3. */
export const REVIEWS_V3 = virtualService('reviews', 'reviews', route('reviews', 'v3'));

/** Request timeouts, step 1: reviews to v2 (which calls ratings). */
export const REVIEWS_V2 = virtualService('reviews', 'reviews', route('reviews', 'v2'), 'networking.istio.io/v1alpha3');

/** Request timeouts, step 2: every call to ratings waits 2 s. */
export const RATINGS_DELAY_2S = virtualService(
  'ratings',
  'ratings',
  `- fault:\n    delay: {percentage: {value: 100}, fixedDelay: 2s}\n  route:\n  - destination: {host: ratings, subset: v1}\n`,
  'networking.istio.io/v1alpha3',
);

/** Request timeouts, step 3: calls to reviews time out after half a second. */
export const REVIEWS_V2_TIMEOUT_HALF_SECOND = virtualService(
  'reviews',
  'reviews',
  `- route:\n  - destination: {host: reviews, subset: v2}\n  timeout: 0.5s\n`,
  'networking.istio.io/v1alpha3',
);

/** Mirroring, step 1: httpbin to v1, with its DestinationRule after the VirtualService in the same file. */
export const HTTPBIN_V1 = file(
  virtualService(
    'httpbin',
    'httpbin',
    `- route:\n  - destination: {host: httpbin, subset: v1}\n    weight: 100\n`,
    'networking.istio.io/v1alpha3',
  ),
  destinationRule('httpbin', 'httpbin', ['v1', 'v2'], 'networking.istio.io/v1alpha3'),
);

/** Mirroring, step 2: every request to httpbin v1 also goes, as a copy, to v2 (the deprecated mirrorPercent). */
export const HTTPBIN_MIRROR_V2 = virtualService(
  'httpbin',
  'httpbin',
  `- route:\n  - destination: {host: httpbin, subset: v1}\n    weight: 100\n  mirror: {host: httpbin, subset: v2}\n  mirrorPercent: 100\n`,
  'networking.istio.io/v1alpha3',
);

/**
 * Circuit breaking: httpbin's DestinationRule with a connection pool of one connection and one pending
 * request (a limit of 2 in flight per cluster), and outlier detection on the first error.
 */
export const HTTPBIN_CIRCUIT_BREAKER = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
`;

/** Bookinfo's ingress: a Gateway and a VirtualService for every host bound to it. */
export const BOOKINFO_INGRESS = file(
  `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
`,
  `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match:
    - uri: {exact: /productpage}
    - uri: {prefix: /static}
    route:
    - destination:
        host: productpage
        port: {number: 9080}
`,
);

/**
 * Istio's locality failover task (docs/tasks/traffic-management/locality-load-balancing/failover):
 * helloworld in region1/zone1, region1/zone2, region2/zone3 and region3/zone4; clients of region1
 * fail over to region2 before any other region.
 */
export const HELLOWORLD_LOCALITY_FAILOVER = `apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: helloworld
spec:
  host: helloworld.sample.svc.cluster.local
  trafficPolicy:
    connectionPool:
      http:
        maxRequestsPerConnection: 1
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting:
        enabled: true
        failover:
          - from: region1
            to: region2
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 1m
`;

/**
 * Istio's locality weighted distribution task: clients in region1/zone1 send 70% to their own zone,
 * 20% to region1/zone2 and 10% to region3/zone4 (none to region2).
 */
export const HELLOWORLD_LOCALITY_DISTRIBUTE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: helloworld
spec:
  host: helloworld.sample.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        enabled: true
        distribute:
        - from: region1/zone1/*
          to:
            "region1/zone1/*": 70
            "region1/zone2/*": 20
            "region3/zone4/*": 10
    outlierDetection:
      consecutive5xxErrors: 100
      interval: 1s
      baseEjectionTime: 1m
`;
