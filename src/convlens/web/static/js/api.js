// The page's only network access: same-origin requests to this server's JSON API.

/** An API answer that was not 2xx: `status` and the server's `detail` sentence. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
  }
}

/**
 * Call the API. `body` objects are sent as JSON; a Blob/ArrayBuffer is sent as raw bytes.
 * @param {string} path e.g. "/api/forward"
 * @param {{method?: string, body?: any, query?: object, signal?: AbortSignal}} [opts]
 */
export async function api(path, opts = {}) {
  const query = opts.query ? `?${new URLSearchParams(Object.entries(opts.query).filter(([, v]) => v !== undefined && v !== null))}` : "";
  const init = { method: opts.method ?? (opts.body === undefined ? "GET" : "POST"), signal: opts.signal, headers: {} };
  if (opts.body instanceof Blob || opts.body instanceof ArrayBuffer) {
    init.body = opts.body;
    init.headers["Content-Type"] = "application/octet-stream";
  } else if (opts.body !== undefined) {
    init.body = JSON.stringify(opts.body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path + query, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, detail);
  }
  return data;
}
