// The admin API, and nothing else: relative URLs (in AWS the page is served under the
// stage prefix, e.g. /api/console, so "v1/admin/stats" is /api/v1/admin/stats), the token
// from this tab's sessionStorage, and errors read from the API's envelope.

const TOKEN_KEY = "sandbox-broker-admin-token";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

// ApiError is an error answer: the envelope's code, message and request_id.
export class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }

  // A missing, wrong or expired token, or one without the admin scope.
  get refusesToken() {
    return this.status === 401 || this.status === 403;
  }
}

// call sends one request (with body as JSON when given) and returns the decoded JSON
// answer, or throws an ApiError.
export async function call(method, path, body) {
  return (await exchange(method, path, body)).answer;
}

// callAt is call that also returns the broker's clock when it answered, in unix seconds
// (its Date header, to the second; null without one): what a count read then is as of.
export async function callAt(method, path) {
  const { answer, date } = await exchange(method, path);
  const ms = Date.parse(date ?? "");
  return { answer, at: Number.isNaN(ms) ? null : Math.floor(ms / 1000) };
}

async function exchange(method, path, body) {
  const headers = { Accept: "application/json" };
  const t = token.get();
  if (t) headers.Authorization = `Bearer ${t}`;
  const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "NETWORK", `The API did not answer (${e.message})`, "");
  }
  const requestId = resp.headers.get("X-Request-ID") || "";
  let answer = null;
  try {
    answer = await resp.json();
  } catch {
    answer = null;
  }
  if (!resp.ok) {
    const d = answer && answer.detail;
    if (d && d.message) throw new ApiError(resp.status, d.code || "", d.message, d.request_id || requestId);
    throw new ApiError(resp.status, `HTTP_${resp.status}`, `The API answered ${resp.status}`, requestId);
  }
  return { answer, date: resp.headers.get("Date") };
}

// maxListPages bounds a full read of a listing: 50 pages of 100.
const maxListPages = 50;

// listAll follows a listing's cursor to its end (or maxListPages) and reports whether it
// read everything. filter holds the list's query parameters (status, prefix).
export async function listAll(filter = {}) {
  const sandboxes = [];
  let cursor = null;
  for (let page = 0; page < maxListPages; page++) {
    const q = new URLSearchParams({ ...filter, limit: "100" });
    if (cursor) q.set("cursor", cursor);
    const answer = await call("GET", `v1/admin/sandboxes?${q}`);
    sandboxes.push(...answer.sandboxes);
    cursor = answer.cursor;
    if (!cursor) return { sandboxes, complete: true };
  }
  return { sandboxes, complete: false };
}

export const sandboxPath = (id) => `v1/admin/sandboxes/${encodeURIComponent(id)}`;
