// The API client: every page reads the public REST API and nothing else.

const TOKEN_KEY = "changelens.token";

export class AuthRequired extends Error {}

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

let authOn = false;
export function setAuth(on) {
  authOn = on;
}

// get fetches /v1/... with the query parameters that are set.
export async function get(path, params = {}) {
  if (authOn && !token()) throw new AuthRequired("a token is needed");
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    q.set(k, v instanceof Date ? v.toISOString() : String(v));
  }
  const url = path + (q.toString() ? "?" + q : "");
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = "Bearer " + token();
  const r = await fetch(url, { headers });
  if (r.status === 401) {
    setToken("");
    throw new AuthRequired("the token was refused");
  }
  let body = null;
  try {
    body = await r.json();
  } catch {
    body = null;
  }
  if (!r.ok) throw new APIError(r.status, (body && body.message) || r.statusText);
  return body;
}

// config is the UI's settings (trace link template, whether auth is on).
export async function config() {
  const r = await fetch("/ui/config.json", { headers: { Accept: "application/json" } });
  return r.json();
}
