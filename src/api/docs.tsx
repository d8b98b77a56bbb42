/** @jsxImportSource hono/jsx */
/**
 * `GET /_waymark/docs`: the admin API's reference as one HTML page rendered on the server from the
 * OpenAPI document. No script and nothing fetched from elsewhere (hosted reference UIs load their
 * JavaScript from a CDN), so it works offline, behind a strict CSP and inside a Worker.
 */
import type { Context } from 'hono';
import type { Child } from 'hono/jsx';
import type { ProblemCode } from '../problem.js';
import {
  API_BASE_PATH,
  type JsonSchema,
  type OpenApiDocument,
  type OpenApiOperation,
  type OpenApiParameter,
  openApiDocument,
  problemInfo,
} from './openapi.js';

const CSS = `
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;background:#fff}
nav{position:fixed;top:0;bottom:0;left:0;width:330px;overflow-y:auto;padding:16px;background:#f5f6f8;border-right:1px solid #dde1e7;font-size:12.5px}
nav h2{font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:#5b6474;margin:14px 0 4px}
nav a{display:block;padding:2px 4px;color:#1d2330;text-decoration:none;border-radius:3px}
nav a.ep{padding-left:54px;text-indent:-50px;font-family:ui-monospace,Menlo,Consolas,monospace}
nav a:hover{background:#e4e8ee}
nav .m{min-width:46px;font-size:10px;text-indent:0;margin-right:4px}
main{margin-left:330px;padding:24px 40px;max-width:1100px}
h1{margin-top:0}
h2{border-bottom:1px solid #dde1e7;padding-bottom:4px;margin-top:40px}
section.op{border:1px solid #dde1e7;border-radius:6px;padding:12px 16px;margin:16px 0}
section.op h3{margin:0 0 4px;font-size:16px;font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
h4{margin:14px 0 4px;font-size:14px}
.m{display:inline-block;min-width:56px;text-align:center;font:bold 11px/18px ui-monospace,monospace;color:#fff;border-radius:3px;padding:0 4px;margin-right:6px;text-transform:uppercase}
.get{background:#2f6fb3}.put{background:#8a5a00}.post{background:#24803d}.delete{background:#b3261e}
.scope{font-size:12px;color:#5b6474}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
code{background:#f0f2f5;padding:0 3px;border-radius:3px}
pre{background:#f5f6f8;border:1px solid #e4e8ee;border-radius:4px;padding:8px;overflow-x:auto;max-height:420px}
table{border-collapse:collapse;width:100%;font-size:13px;margin:4px 0}
th,td{border-bottom:1px solid #e4e8ee;text-align:left;vertical-align:top;padding:4px 6px}
th{font-weight:600;color:#5b6474;background:#fafbfc}
td.f{font-family:ui-monospace,monospace;white-space:nowrap}
.req{color:#b3261e;font-size:11px}
.note{color:#5b6474}
details{margin:6px 0}summary{cursor:pointer;color:#2f6fb3}
`;

/** Inline markdown of the registry's words: `code` only. */
function text(words: string): Child[] {
  return words.split('`').map((part, i) => (i % 2 === 1 ? <code>{part}</code> : part));
}

/** A path that may wrap before any `/` (the index is narrow). */
function breakable(path: string): Child[] {
  return path.split('/').flatMap((segment, i) => (i === 0 ? [segment] : [<wbr />, `/${segment}`]));
}

const opAnchor = (op: OpenApiOperation) => `op-${op.operationId}`;

interface Row {
  field: string;
  depth: number;
  type: string;
  required: boolean;
  notes: string[];
}

/** The schema a `$ref` into components names, or the schema itself. */
function resolve(schema: JsonSchema, doc: OpenApiDocument): JsonSchema {
  const ref = schema.$ref;
  if (typeof ref !== 'string') return schema;
  return doc.components.schemas[ref.replace('#/components/schemas/', '')] ?? {};
}

const variantsOf = (s: JsonSchema): JsonSchema[] => (s.anyOf ?? s.oneOf ?? []) as JsonSchema[];
const propertiesOf = (s: JsonSchema): Record<string, JsonSchema> => (s.properties ?? {}) as Record<string, JsonSchema>;
const objectValue = (v: unknown): JsonSchema | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as JsonSchema) : undefined;

/** A schema's type in a few characters: `string`, `integer[]`, `{exact} | {prefix}`, `map of string`. */
function typeOf(schema: JsonSchema, doc: OpenApiDocument): string {
  const s = resolve(schema, doc);
  if ('const' in s) return JSON.stringify(s.const);
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  const variants = variantsOf(s);
  if (variants.length) return variants.map((v) => typeOf(v, doc)).join(' | ');
  if (Array.isArray(s.type)) return s.type.join(' | ');
  if (s.type === 'array') {
    const items = typeOf(objectValue(s.items) ?? {}, doc);
    return items.includes(' | ') ? `(${items})[]` : `${items}[]`;
  }
  if (s.type === 'object' || s.properties) {
    const keys = Object.keys(propertiesOf(s));
    if (keys.length) return keys.length <= 4 ? `{${keys.join(', ')}}` : 'object';
    const values = objectValue(s.additionalProperties);
    return values ? `map of ${typeOf(values, doc)}` : 'object';
  }
  if (typeof s.type === 'string') return typeof s.format === 'string' ? `${s.type} (${s.format})` : s.type;
  return 'any';
}

/** Constraints and defaults, as a client needs to read them. */
function notesOf(schema: JsonSchema): string[] {
  const notes: string[] = [];
  const bound = (key: string, label: string) => {
    if (schema[key] !== undefined) notes.push(`${label} ${schema[key]}`);
  };
  bound('minimum', 'min');
  bound('exclusiveMinimum', 'above');
  bound('maximum', 'max');
  bound('minLength', 'min length');
  bound('maxLength', 'max length');
  bound('minItems', 'min items');
  bound('maxItems', 'max items');
  if (typeof schema.pattern === 'string') notes.push(`pattern ${schema.pattern}`);
  const keys = objectValue(schema.propertyNames);
  if (keys && typeof keys.pattern === 'string') notes.push(`keys match ${keys.pattern}`);
  if (schema.default !== undefined) notes.push(`default ${JSON.stringify(schema.default)}`);
  if (typeof schema.description === 'string') notes.push(schema.description);
  return notes;
}

/** Whether a schema has fields of its own to list below its row. */
function hasFields(schema: JsonSchema, doc: OpenApiDocument): boolean {
  const s = resolve(schema, doc);
  if (Object.keys(propertiesOf(s)).length) return true;
  if (variantsOf(s).some((v) => hasFields(v, doc))) return true;
  const items = objectValue(s.items);
  if (items && hasFields(items, doc)) return true;
  const values = objectValue(s.additionalProperties);
  return values !== undefined && hasFields(values, doc);
}

/** The fields under a schema, depth first: objects' properties, items' and map values' fields, variants'. */
function fieldRows(schema: JsonSchema, doc: OpenApiDocument, depth: number, out: Row[]): Row[] {
  const s = resolve(schema, doc);
  const required = new Set((s.required ?? []) as string[]);
  for (const [name, property] of Object.entries(propertiesOf(s))) {
    const p = resolve(property, doc);
    out.push({ field: name, depth, type: typeOf(p, doc), required: required.has(name), notes: notesOf(p) });
    if (hasFields(p, doc)) fieldRows(p, doc, depth + 1, out);
  }
  for (const variant of variantsOf(s)) if (hasFields(variant, doc)) fieldRows(variant, doc, depth, out);
  const items = objectValue(s.items);
  if (items && hasFields(items, doc)) fieldRows(items, doc, depth, out);
  const values = objectValue(s.additionalProperties);
  if (values && hasFields(values, doc)) {
    const v = resolve(values, doc);
    out.push({ field: '{key}', depth, type: typeOf(v, doc), required: false, notes: notesOf(v) });
    fieldRows(v, doc, depth + 1, out);
  }
  return out;
}

function SchemaTable(props: { schema: JsonSchema; doc: OpenApiDocument }) {
  const rows = fieldRows(props.schema, props.doc, 0, []);
  if (rows.length === 0) return <p>{typeOf(props.schema, props.doc)}</p>;
  return (
    <table>
      <thead>
        <tr>
          <th>field</th>
          <th>type</th>
          <th>constraints, default</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <tr>
            <td class="f" style={`padding-left:${0.4 + row.depth * 1.2}rem`}>
              {row.field} {row.required ? <span class="req">required</span> : ''}
            </td>
            <td>
              <code>{row.type}</code>
            </td>
            <td class="note">{row.notes.join('; ')}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Parameters(props: { params: OpenApiParameter[]; doc: OpenApiDocument }) {
  return (
    <table>
      <thead>
        <tr>
          <th>name</th>
          <th>in</th>
          <th>type</th>
          <th>description</th>
        </tr>
      </thead>
      <tbody>
        {props.params.map((p) => (
          <tr>
            <td class="f">
              {p.name} {p.required ? <span class="req">required</span> : ''}
            </td>
            <td>{p.in}</td>
            <td>
              <code>{typeOf(p.schema, props.doc)}</code>
            </td>
            <td>
              {text(p.description)}
              <span class="note">
                {[...notesOf(p.schema), ...(p.example !== undefined ? [`e.g. ${JSON.stringify(p.example)}`] : [])]
                  .map((n) => ` ${n}.`)
                  .join('')}
              </span>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function pretty(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

function Operation(props: { path: string; method: string; op: OpenApiOperation; doc: OpenApiDocument }) {
  const { op, doc } = props;
  const body = op.requestBody;
  const media = body ? Object.entries(body.content) : [];
  const schema = media[0]?.[1].schema;
  const example = media.find(([, m]) => m.example !== undefined)?.[1].example;
  const scope = op['x-waymark-scope'];
  return (
    <section class="op" id={opAnchor(op)}>
      <h3>
        <span class={`m ${props.method}`}>{props.method}</span>
        {props.path}
      </h3>
      <div>
        <strong>{op.summary}</strong>{' '}
        <span class="scope">
          {scope ? (
            <>
              scope <code>{scope}</code>
            </>
          ) : (
            'no token needed'
          )}
        </span>
      </div>
      {op.description ? <p>{text(op.description)}</p> : ''}
      {op.parameters?.length ? (
        <>
          <h4>Parameters</h4>
          <Parameters params={op.parameters} doc={doc} />
        </>
      ) : (
        ''
      )}
      {body && schema ? (
        <>
          <h4>Body ({media.map(([type]) => type).join(' or ')})</h4>
          <p>{text(body.description)}</p>
          <SchemaTable schema={schema} doc={doc} />
          {example !== undefined ? (
            <details open>
              <summary>Example</summary>
              <pre>{pretty(example)}</pre>
            </details>
          ) : (
            ''
          )}
        </>
      ) : (
        ''
      )}
      <h4>Responses</h4>
      <table>
        <thead>
          <tr>
            <th>status</th>
            <th>content</th>
            <th>what</th>
          </tr>
        </thead>
        <tbody>
          {Object.entries(op.responses).map(([status, response]) => {
            const codes = response['x-waymark-problem-codes'];
            return (
              <tr>
                <td class="f">{status}</td>
                <td class="f">{Object.keys(response.content ?? {}).join(', ') || '(none)'}</td>
                <td>{codes ? <ProblemList codes={codes} /> : text(response.description)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

function ProblemList(props: { codes: ProblemCode[] }) {
  return (
    <>
      {props.codes.map((code, i) => (
        <>
          {i > 0 ? ', ' : ''}
          <a href={`#problem-${code}`}>
            <code>{code}</code>
          </a>
        </>
      ))}
    </>
  );
}

interface Entry {
  path: string;
  method: string;
  op: OpenApiOperation;
}

function entriesByTag(doc: OpenApiDocument): Map<string, Entry[]> {
  const groups = new Map<string, Entry[]>(doc.tags.map((t) => [t.name, []]));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = op.tags[0] ?? 'other';
      groups.set(tag, [...(groups.get(tag) ?? []), { path, method, op }]);
    }
  }
  return groups;
}

function Page(props: { doc: OpenApiDocument }) {
  const { doc } = props;
  const groups = entriesByTag(doc);
  const codes = new Set<ProblemCode>();
  for (const entries of groups.values())
    for (const { op } of entries)
      for (const response of Object.values(op.responses))
        for (const code of response['x-waymark-problem-codes'] ?? []) codes.add(code);
  const openApiUrl = `${API_BASE_PATH}/openapi.json`;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{doc.info.title} reference</title>
        <style dangerouslySetInnerHTML={{ __html: CSS }} />
      </head>
      <body>
        <nav>
          <strong>{doc.info.title}</strong>
          <a href="#auth">Authentication</a>
          <a href="#problems">Problems</a>
          {[...groups].map(([tag, entries]) =>
            entries.length ? (
              <>
                <h2>
                  <a href={`#tag-${tag}`}>{tag}</a>
                </h2>
                {entries.map((e) => (
                  <a class="ep" href={`#${opAnchor(e.op)}`} title={e.op.summary}>
                    <span class={`m ${e.method}`}>{e.method}</span>
                    {breakable(e.path)}
                  </a>
                ))}
              </>
            ) : (
              ''
            ),
          )}
        </nav>
        <main>
          <h1>{doc.info.title}</h1>
          <p>{text(doc.info.description)}</p>
          <p>
            Every path below is under <code>{API_BASE_PATH}</code>. The same reference as an OpenAPI {doc.openapi}{' '}
            document: <a href={openApiUrl}>{openApiUrl}</a>.
          </p>
          <h2 id="auth">Authentication and scopes</h2>
          <p>
            Send <code>Authorization: Bearer &lt;token&gt;</code>. A token holds scopes, and each endpoint names the one
            it needs: <code>read</code> reads everything, <code>override</code> manages overrides, pauses and resumes
            routes and runs the sync, <code>write</code> changes the configuration. Scopes do not imply one another: a
            token that writes holds <code>read</code> too to read.
          </p>
          <ul>
            <li>
              Settings tokens: <code>WAYMARK_ADMIN_TOKEN</code> holds every scope, <code>WAYMARK_READ_TOKENS</code>{' '}
              <code>read</code>, <code>WAYMARK_ONCALL_TOKENS</code> <code>read</code> and <code>override</code>.
            </li>
            <li>
              Stored keys (<code>wmk_...</code>), made with <a href="#op-createToken">POST /tokens</a>: scopes,
              optionally limited to some services (403 on any other; lists and the config document show only its own)
              and expiring; revoking one holds at once.
            </li>
            <li>
              No settings token configured: 503 <code>admin-disabled</code>. Missing or unknown token: 401{' '}
              <code>unauthorized</code>. A scope or service the token lacks: 403 <code>forbidden</code>.
            </li>
          </ul>
          <p>
            Every answer carries <code>x-request-id</code>; a problem document repeats it as <code>requestId</code>,
            which finds the request in the logs.
          </p>
          <h2 id="problems">Problems</h2>
          <p>
            Errors are <code>application/problem+json</code> (RFC 9457) with <code>type</code>, <code>title</code>,{' '}
            <code>status</code>, <code>detail</code>, <code>code</code>, <code>requestId</code> and, for bad input,{' '}
            <code>errors</code>: every offending <code>field</code> with its <code>message</code>. The codes this API
            answers:
          </p>
          <table>
            <thead>
              <tr>
                <th>code</th>
                <th>status</th>
                <th>title</th>
              </tr>
            </thead>
            <tbody>
              {[...codes]
                .map((code) => ({ code, ...problemInfo(code) }))
                .sort((a, b) => a.status - b.status)
                .map((p) => (
                  <tr id={`problem-${p.code}`}>
                    <td class="f">{p.code}</td>
                    <td>{p.status}</td>
                    <td>{p.title}</td>
                  </tr>
                ))}
            </tbody>
          </table>
          {[...groups].map(([tag, entries]) =>
            entries.length ? (
              <>
                <h2 id={`tag-${tag}`}>{tag}</h2>
                <p>{text(doc.tags.find((t) => t.name === tag)?.description ?? '')}</p>
                {entries.map((e) => (
                  <Operation path={e.path} method={e.method} op={e.op} doc={doc} />
                ))}
              </>
            ) : (
              ''
            ),
          )}
        </main>
      </body>
    </html>
  );
}

/** The reference page of `doc` as a complete HTML document. */
function renderReference(doc: OpenApiDocument): string {
  return `<!doctype html>${(<Page doc={doc} />).toString()}`;
}

let rendered: string | undefined;

/** No script, no other origin: the page needs nothing but its own inline styles. */
const CSP =
  "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** `GET /_waymark/docs`: no token, like the document it renders. */
export function referencePage(c: Context): Response {
  rendered ??= renderReference(openApiDocument());
  return c.html(rendered, 200, { 'content-security-policy': CSP });
}
