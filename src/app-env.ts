/** Hono's per-request variables, shared by every part of the app. */
export interface AppEnv {
  Variables: {
    requestId: string;
    actor: string;
  };
}
