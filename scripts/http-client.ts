import { request as httpRequest } from 'node:http';

export interface SimpleResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: any;
}

/**
 * One HTTP/1.1 request with node:http, because fetch() may not set the Host header and Waymark routes
 * by Host. Used by the demo, tests and benchmarks.
 */
export function send(
  url: string,
  init: {
    method?: string;
    host?: string;
    headers?: Record<string, string>;
    body?: string;
    agent?: import('node:http').Agent;
  } = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...init.headers };
    if (init.host) headers.host = init.host;
    if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body));
    const req = httpRequest(url, { method: init.method ?? 'GET', headers, agent: init.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (init.body !== undefined) req.write(init.body);
    req.end();
  });
}
