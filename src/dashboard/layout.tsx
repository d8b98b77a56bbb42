/** @jsxImportSource hono/jsx */
import type { Child } from 'hono/jsx';
import type { Problem } from '../problem.js';
import type { Session } from './session.js';
import { DASHBOARD_PATH } from './session.js';

const CSS = `
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"DejaVu Sans",sans-serif;color:#1d2330;background:#f5f6f8}
header{display:flex;align-items:center;gap:18px;padding:10px 24px;background:#1d2330;color:#fff}
header a{color:#c9d3e3;text-decoration:none}header a:hover{color:#fff}
header .brand{font-weight:700;color:#fff;margin-right:12px}
header .who{margin-left:auto;font-size:12px;color:#c9d3e3}
header form{display:inline;margin:0}
header button{background:none;border:1px solid #5b6474;color:#c9d3e3;border-radius:4px;padding:2px 8px;cursor:pointer}
main{padding:20px 24px;max-width:1240px}
h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:22px 0 8px}
.muted{color:#5b6474}.small{font-size:12px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e7;border-radius:6px}
th,td{border-bottom:1px solid #e9ecf1;text-align:left;vertical-align:top;padding:6px 8px}
th{font-weight:600;color:#5b6474;background:#fafbfc;font-size:12px}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;background:#eef0f4;padding:0 3px;border-radius:3px}
a{color:#2f6fb3}
.pill{display:inline-block;border-radius:9px;padding:0 7px;font-size:11.5px;font-weight:600;background:#e4e8ee;color:#1d2330}
.healthy{background:#dcf3e2;color:#1e6b34}.unhealthy,.down{background:#fbe0de;color:#9c2219}
.unknown{background:#eef0f4;color:#5b6474}.drained,.ejected{background:#fff1cc;color:#7a5200}
.grid td.cell{text-align:center;min-width:92px}.grid .share{font-size:17px;font-weight:600}
.grid td.off{background:#fafbfc;color:#aab1bd}
.grid th.cl{text-align:center}
.toggle{font-size:11px;font-weight:400}
.problem{border:1px solid #e8a19b;background:#fdf0ef;border-radius:6px;padding:10px 14px;margin:0 0 14px}
.problem ul{margin:4px 0 0;padding-left:20px}
.whatif{border:1px solid #f0c75e;background:#fff8e1;border-radius:6px;padding:6px 12px;margin:0 0 10px}
form.inline{display:inline;margin:0}
.card{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:12px 14px}
.card label{display:inline-flex;flex-direction:column;font-size:12px;color:#5b6474;margin:0 10px 6px 0}
input,select{font:inherit;padding:3px 6px;border:1px solid #c3c9d3;border-radius:4px;background:#fff}
button{font:inherit;padding:3px 10px;border:1px solid #2f6fb3;background:#2f6fb3;color:#fff;border-radius:4px;cursor:pointer}
button.secondary{background:#fff;color:#2f6fb3}
.spark{display:inline-flex;align-items:center;gap:6px;white-space:nowrap}
.spark svg polyline{stroke:#2f6fb3;stroke-width:1.5}.spark svg circle{fill:#2f6fb3}.spark .axis{stroke:#dde1e7}
.spark .v{font-variant-numeric:tabular-nums;font-size:12px;min-width:58px}
details summary{cursor:pointer;color:#2f6fb3;font-size:12px}
pre{margin:4px 0 0;white-space:pre-wrap;word-break:break-word;font-size:11.5px;background:#f5f6f8;padding:6px;border-radius:4px;max-width:640px}
.signin{max-width:420px;margin:80px auto;background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:24px}
.signin input{width:100%;margin:6px 0 12px}
`;

/**
 * The page's content security policy: scripts only from Waymark itself (the refresh script), styles
 * inline, forms and fetches to this origin only, never framed.
 */
export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/** A problem shown on the page: what went wrong and every offending field. */
export function ProblemBox(props: { problem: Problem | null }) {
  const { problem } = props;
  if (!problem) return '';
  return (
    <div class="problem" role="alert" data-code={problem.code}>
      <strong>{problem.title}</strong>: {problem.detail}
      {problem.errors?.length ? (
        <ul>
          {problem.errors.map((e) => (
            <li>
              <code>{e.field}</code>: {e.message}
            </li>
          ))}
        </ul>
      ) : (
        ''
      )}
    </div>
  );
}

/** A hidden field every form of a session carries. */
export function Csrf(props: { session: Session }) {
  return <input type="hidden" name="csrf" value={props.session.csrf} />;
}

/**
 * The page's `main`: what the refresh script fetches again every few seconds (`refresh` false: a page
 * answering a form post, which has no URL to fetch).
 */
export function Main(props: { children?: Child; refresh: boolean; now: number }) {
  return (
    <main data-refresh={props.refresh ? 'true' : undefined} data-rendered-at={new Date(props.now).toISOString()}>
      {props.children}
    </main>
  );
}

/** The whole document around a `main`. */
export function Page(props: { title: string; session: Session | null; children?: Child }) {
  const { session } = props;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · Waymark`}</title>
        <style>{CSS}</style>
        <script src={`${DASHBOARD_PATH}/app.js`} defer />
      </head>
      <body>
        <header>
          <a class="brand" href={DASHBOARD_PATH}>
            Waymark
          </a>
          {session ? (
            <>
              <a href={DASHBOARD_PATH}>Services</a>
              <a href={`${DASHBOARD_PATH}/events`}>Events &amp; audit</a>
              <a href="/_waymark/docs">API reference</a>
              <span class="who">
                signed in as <strong>{session.grant.actor}</strong> ({session.grant.scopes.join(', ')}){' '}
                <form class="inline" method="post" action={`${DASHBOARD_PATH}/sign-out`}>
                  <Csrf session={session} />
                  <button type="submit">Sign out</button>
                </form>
              </span>
            </>
          ) : (
            ''
          )}
        </header>
        {props.children}
      </body>
    </html>
  );
}

/** `12.5/s`, `3.2%`, `41 ms`: figures as the charts and tables show them. */
export const fmt = {
  rate: (v: number) => `${v < 10 ? v.toFixed(1) : Math.round(v)}/s`,
  percent: (v: number) => `${(v * 100).toFixed(v < 0.1 ? 1 : 0)}%`,
  ms: (v: number) => `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`,
};
