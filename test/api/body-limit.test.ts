import { request } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SimpleResponse } from '../../scripts/http-client.js';
import { MAX_JSON_BODY_BYTES } from '../../src/app.js';
import { serviceBody } from '../support/factories.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../support/server.js';
import { dbState, expectProblem } from './api-support.js';

let server: TestServer;

beforeEach(async () => {
  server = await startTestServer();
});

afterEach(async () => {
  await server.close();
});

/** A valid service document padded with spaces (JSON whitespace) to `bytes`. */
function paddedService(bytes: number): string {
  const json = JSON.stringify(serviceBody(['shop.example.com']));
  return `${json.slice(0, -1) + ' '.repeat(bytes - json.length)}}`;
}

/** A PUT whose body is sent in 64 KiB chunks with Transfer-Encoding: chunked and no Content-Length. */
function putChunked(path: string, body: string): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}/_waymark/api/v1${path}`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        'content-type': 'application/json',
        'transfer-encoding': 'chunked',
      },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: JSON.parse(text) });
      });
    });
    // The server may answer and close before the whole body is out: the answer is what counts.
    req.on('error', (error) => (req.writableEnded ? undefined : reject(error)));
    const chunk = 64 * 1024;
    for (let at = 0; at < body.length; at += chunk) req.write(body.slice(at, at + chunk));
    req.end();
  });
}

describe('admin request bodies are capped at 1 MiB', () => {
  it('a 2 MiB JSON PUT -> 413 naming the limit, nothing written', async () => {
    const before = await dbState(server.db);
    const res = await server.admin('PUT', '/services/shop', paddedService(2 * MAX_JSON_BODY_BYTES));
    expectProblem(res, 413, 'payload-too-large');
    expect(res.json.detail).toContain(String(MAX_JSON_BODY_BYTES));
    expect(await dbState(server.db)).toEqual(before);
  });

  it('a 2 MiB chunked PUT with no Content-Length -> 413, nothing written', async () => {
    const before = await dbState(server.db);
    const res = await putChunked('/services/shop', paddedService(2 * MAX_JSON_BODY_BYTES));
    expectProblem(res, 413, 'payload-too-large');
    expect(await dbState(server.db)).toEqual(before);
  });

  it('a body of exactly 1 MiB is read and applied, chunked or not', async () => {
    const res = await server.admin('PUT', '/services/shop', paddedService(MAX_JSON_BODY_BYTES));
    expect(res.status, res.body).toBe(201);
    const chunked = await putChunked('/services/shop', paddedService(MAX_JSON_BODY_BYTES));
    expect(chunked.status, chunked.body).toBe(200);
  });

  it('the Istio import keeps its own cap and its own answer', async () => {
    const res = await server.admin('POST', '/import/istio', `# ${'x'.repeat(2 * MAX_JSON_BODY_BYTES)}\n`);
    expectProblem(res, 413, 'payload-too-large');
    expect(res.json.detail).toContain('import fewer resources at a time');
  });
});
