/** @jsxImportSource hono/jsx */
import type { Problem } from '../problem.js';
import { Main, ProblemBox } from './layout.js';
import { DASHBOARD_PATH } from './session.js';

/** The sign-in form: an admin API token (a settings token or a team key) kept in an HttpOnly cookie. */
export function SignIn(props: { now: number; problem: Problem | null; disabled: boolean }) {
  return (
    <Main refresh={false} now={props.now}>
      <div class="signin">
        <h1>Sign in to Waymark</h1>
        <ProblemBox problem={props.problem} />
        {props.disabled ? (
          <p id="disabled">
            The admin API is off: no admin token is configured. Set <code>WAYMARK_ADMIN_TOKEN</code>.
          </p>
        ) : (
          <form method="post" action={`${DASHBOARD_PATH}/sign-in`} id="sign-in">
            <label for="token">API token (a settings token or a team key)</label>
            <input id="token" name="token" type="password" autocomplete="current-password" required />
            <button type="submit">Sign in</button>
            <p class="small muted">
              The token stays in an HttpOnly cookie for <code>/_waymark</code>; what it cannot do is not offered.
            </p>
          </form>
        )}
      </div>
    </Main>
  );
}
