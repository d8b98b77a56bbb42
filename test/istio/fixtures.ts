/** Istio YAML as users bring it (Bookinfo's `reviews` service and friends), shared by the Istio tests. */

/** The Bookinfo DestinationRule: subsets v1, v2 and v3 of `reviews` by the `version` label. */
export const REVIEWS_DR = `apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews.prod.svc.cluster.local
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v3
    labels:
      version: v3
`;

/** Header routing: `end-user: jason` goes to the v2 (staging) subset, everyone else to v1. */
export const HEADER_ROUTING_VS = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews.prod.svc.cluster.local
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews.prod.svc.cluster.local
        subset: v2
  - route:
    - destination:
        host: reviews.prod.svc.cluster.local
        subset: v1
`;

/** A VirtualService for `reviews` with one http entry: `body` is that entry's YAML, indented 4. */
export function reviewsVs(body: string, apiVersion = 'networking.istio.io/v1beta1'): string {
  return `apiVersion: ${apiVersion}
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - ${body.trim().replace(/\n/g, '\n    ')}
`;
}

/** The reviews DestinationRule with a trafficPolicy (YAML, indented 4 under trafficPolicy). */
export function reviewsDr(trafficPolicy: string): string {
  return `${REVIEWS_DR}  trafficPolicy:
    ${trafficPolicy.trim().replace(/\n/g, '\n    ')}
`;
}

/** Documents joined the way kubectl prints them. */
export function docs(...yaml: string[]): string {
  return yaml.join('---\n');
}
