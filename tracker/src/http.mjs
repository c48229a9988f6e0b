// What every cartwise answer may carry: JSON bodies, error bodies, Retry-After.

export async function readJson(response) {
  try {
    return await response.json();
  } catch (_) {
    return null;
  }
}

// Seconds to wait, from the Retry-After header (seconds or an HTTP date) and the body's
// error.retry_after_s, whichever is longer; null when the answer gives neither.
export function retryAfterMs(response, body, now) {
  let ms = null;
  const header = response.headers && typeof response.headers.get === 'function'
    ? response.headers.get('Retry-After')
    : null;
  if (header != null && String(header).trim() !== '') {
    const text = String(header).trim();
    const seconds = Number(text);
    const at = /^\d+(\.\d+)?$/.test(text) ? now + seconds * 1000 : Date.parse(text);
    if (Number.isFinite(at)) ms = Math.max(0, at - now);
  }
  const fromBody = body && body.error && Number(body.error.retry_after_s);
  if (Number.isFinite(fromBody) && fromBody >= 0) ms = Math.max(ms || 0, fromBody * 1000);
  return ms;
}

// The error to report for a non-2xx answer: the server's code and message when it gave them.
export function httpError(source, response, body) {
  const error = body && body.error && typeof body.error === 'object' ? body.error : {};
  return {
    code: typeof error.code === 'string' ? error.code : 'http_' + response.status,
    message: typeof error.message === 'string' ? error.message : 'HTTP ' + response.status,
    status: response.status,
    source,
  };
}
