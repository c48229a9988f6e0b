// Delivery of the queue to POST /v1/events: batches, retries, beacons on page hide.

import { readJson, retryAfterMs, httpError } from './http.mjs';
import { MAX_EVENTS_PER_REQUEST, uuid4 } from './contract.mjs';

// A browser refuses a keepalive fetch or a beacon whose body would take the page's
// in-flight keepalive bytes over 64 KiB (the Fetch standard's limit, shared by all of the
// page's keepalive requests and beacons): every batch stays under 60 KB.
export const KEEPALIVE_MAX_BYTES = 60000;
const ENVELOPE_BYTES = '{"events":[]}'.length;

function idsOf(batch) {
  return new Set(batch.map((item) => item.e.event_id));
}

// The oldest items that fit in one request: at most `maxEvents`, at most `maxBytes` of body.
export function pickBatch(items, maxEvents, maxBytes) {
  const batch = [];
  let bytes = ENVELOPE_BYTES;
  for (const item of items) {
    const more = batch.length ? item.n + 1 : item.n; // +1: the comma
    if (batch.length >= maxEvents || bytes + more > maxBytes) break;
    batch.push(item);
    bytes += more;
  }
  return batch;
}

function bodyOf(batch) {
  return '{"events":[' + batch.map((item) => JSON.stringify(item.e)).join(',') + ']}';
}

export function createSender({ url, beaconUrl, key, queue, env, config, report, delivered }) {
  const stats = { delivered: 0, duplicates: 0, rejected: 0, beaconed: 0, retries: 0 };
  const inFlight = new Set();
  const reportedFaults = new Set();
  let timer = null;
  let timerAt = 0;
  let running = null;
  let attempt = 0;
  let blockedUntil = 0;
  let hardBlock = false; // set by Retry-After: even flush() waits for it
  let splitLimit = Infinity; // after a 413: smaller batches for the rest of the page life
  let stopped = false;
  // Items a beacon sent carry the epoch of the page life that sent them. They are not sent
  // again in that life (the beacon probably arrived); a later page load has a new epoch and
  // resends them (the server answers duplicates for those that did arrive).
  let epoch = newEpoch();

  function newEpoch() {
    return uuid4(env.crypto); // random, not from the clock: two page loads never share one
  }

  function eligible() {
    return queue.items().filter((item) => !inFlight.has(item.e.event_id) && item.b !== epoch);
  }

  function cancel() {
    if (timer !== null) env.clearTimeout(timer);
    timer = null;
  }

  function schedule(delay) {
    if (stopped) return;
    const now = env.now();
    const at = Math.max(now + delay, blockedUntil);
    if (timer !== null && timerAt <= at) return;
    cancel();
    timerAt = at;
    timer = env.setTimeout(() => {
      timer = null;
      if (env.now() < blockedUntil) schedule(0);
      else run();
    }, at - now);
  }

  // No automatic send before `delay` from now; `hard` (Retry-After) binds flush() too.
  function block(delay, hard) {
    blockedUntil = env.now() + delay;
    hardBlock = hard;
    cancel();
    schedule(0);
  }

  function run() {
    if (stopped) return Promise.resolve();
    if (!running) {
      running = (async () => {
        try {
          while (!stopped && env.now() >= blockedUntil && (await sendOne()));
        } finally {
          running = null;
        }
      })();
    }
    return running;
  }

  function backoff() {
    // Exponential backoff with "equal jitter": uniform in [c/2, c), c = min(cap, base * 2^attempt).
    // Half of it grows for sure (no hot loop), the other half spreads the tabs and shops that
    // failed together.
    const ceiling = Math.min(config.maxBackoffMs, config.baseBackoffMs * 2 ** attempt);
    return Math.floor(ceiling / 2 + env.random() * (ceiling / 2));
  }

  // Wait, then retry. A Retry-After is a floor: never earlier, and a jitter of up to one base
  // backoff on top of it, so that the pages the server slowed down do not all come back at once.
  function retryLater(retryAfter, error) {
    const ownDelay = backoff();
    const delay = retryAfter != null
      ? Math.max(ownDelay, retryAfter + Math.floor(env.random() * config.baseBackoffMs))
      : ownDelay;
    attempt++;
    stats.retries++;
    block(delay, retryAfter != null);
    if (error) report({ ...error, retry_in_ms: delay });
  }

  function acknowledge(batch, answer) {
    attempt = 0;
    blockedUntil = 0;
    hardBlock = false;
    const byId = new Map(batch.map((item) => [item.e.event_id, item]));
    const rejected = new Set();
    for (const entry of (answer && Array.isArray(answer.rejected) ? answer.rejected : [])) {
      const item = (entry && byId.get(entry.event_id)) || (entry && batch[entry.index]);
      if (!item || rejected.has(item.e.event_id)) continue;
      rejected.add(item.e.event_id);
      const reasons = Array.isArray(entry.reasons) ? entry.reasons : [];
      report({
        code: 'event_rejected',
        message: (reasons[0] && reasons[0].message) || 'the server refused this event',
        reasons,
        event_id: item.e.event_id,
        type: item.e.type,
        source: 'events',
      });
    }
    // Accepted, duplicate and rejected alike are acknowledged: none is ever sent again.
    // (The server answers {"accepted": <count>, "duplicates": [{"index", "event_id"}],
    // "rejected": [{"index", "event_id", "reasons"}], "duplicate_count", "rejected_count"}.)
    queue.remove(idsOf(batch));
    stats.delivered += batch.length - rejected.size;
    const duplicates = answer && Array.isArray(answer.duplicates)
      ? answer.duplicates.length
      : Number(answer && answer.duplicate_count) || 0;
    stats.duplicates += duplicates;
    stats.rejected += rejected.size;
    delivered(batch.filter((item) => !rejected.has(item.e.event_id)).map((item) => item.e));
  }

  async function sendOne() {
    if (env.navigator && env.navigator.onLine === false) {
      // The 'online' event calls flush(); a slow timer covers a browser that never fires it.
      block(config.maxBackoffMs, false);
      return false;
    }
    const batch = pickBatch(eligible(), Math.min(config.maxBatchEvents, splitLimit), config.maxBatchBytes);
    if (!batch.length) return false;
    const body = bodyOf(batch);
    const bytes = batch.reduce((sum, item) => sum + item.n, ENVELOPE_BYTES + batch.length - 1);
    batch.forEach((item) => inFlight.add(item.e.event_id));
    let response;
    let answer;
    try {
      response = await env.fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Api-Key': key },
        body,
        // keepalive lets the request outlive the page; allowed only under the 64 KiB limit.
        keepalive: bytes <= KEEPALIVE_MAX_BYTES,
        credentials: 'omit',
      });
      answer = await readJson(response);
    } catch (error) {
      if (!stopped) {
        retryLater(null, { code: 'network_error', message: String((error && error.message) || error), source: 'events' });
      }
      return false;
    } finally {
      batch.forEach((item) => inFlight.delete(item.e.event_id));
    }
    if (stopped) return false;
    const status = response.status;
    if (status >= 200 && status < 300) {
      acknowledge(batch, answer);
      return true;
    }
    if (status === 413 && batch.length > 1) {
      // Over the server's limits (the tracker's batches stay far below them, so a proxy's
      // lower limit): halve until the batch fits, or the event is alone and is dropped.
      splitLimit = Math.ceil(batch.length / 2);
      return true;
    }
    if (status === 400 || status === 401 || status === 403 || status === 413) {
      // Final: the same request would be refused again. The batch is dropped and reported;
      // the rest of the queue goes on (each batch is answered on its own).
      splitLimit = Infinity;
      attempt = 0;
      queue.remove(idsOf(batch));
      stats.rejected += batch.length;
      report({
        ...httpError('events', response, answer),
        dropped: batch.length,
        event_ids: batch.map((item) => item.e.event_id),
      });
      return true;
    }
    if (status === 408 || status === 429 || status >= 500) {
      const wait = status === 429 || status === 503 ? retryAfterMs(response, answer, env.now()) : null;
      retryLater(wait, httpError('events', response, answer));
      return false;
    }
    // 404, 405, 415, ...: a fault of the page's configuration. The events stay queued (a page
    // with the fault fixed delivers them); retried slowly, reported once per page.
    const fault = httpError('events', response, answer);
    const first = !reportedFaults.has(status);
    reportedFaults.add(status);
    attempt++;
    block(config.maxBackoffMs, false);
    if (first) report(fault);
    return false;
  }

  // The page is going away: send now, whatever Retry-After said (this is the last chance
  // of this page; one request). sendOne marks the fetch keepalive under 60 KB.
  function keepaliveNow() {
    if (typeof env.fetch !== 'function') return;
    blockedUntil = 0;
    hardBlock = false;
    cancel();
    run();
  }

  return {
    stats,
    // After an event is queued: send soon, or at once when a full batch is waiting.
    queued() {
      const items = eligible();
      const bytes = items.reduce((sum, item) => sum + item.n + 1, ENVELOPE_BYTES);
      const full = items.length >= config.maxBatchEvents || bytes >= config.maxBatchBytes;
      schedule(full ? 0 : config.flushIntervalMs);
    },
    // Send now, unless the server asked to wait (Retry-After): then as soon as allowed.
    flush() {
      if (stopped) return Promise.resolve();
      if (hardBlock && env.now() < blockedUntil) {
        schedule(0);
        return running || Promise.resolve();
      }
      blockedUntil = 0;
      hardBlock = false;
      cancel();
      return run();
    },
    // On page hide: whatever is not yet sent goes in beacons. A beacon carries no custom
    // header (the key is in the URL) and its Blob is text/plain;charset=UTF-8, a CORS-safelisted
    // type: with any other type a cross-origin beacon needs a preflight, which browsers
    // refuse for beacons. Its outcome is unknown: the items stay queued, marked.
    // Without sendBeacon, or when the browser refuses the first one, the oldest batch goes by
    // a keepalive fetch instead (whose answer, if the page lives on, acknowledges it as usual).
    // A tracker given a secret key has no beaconUrl (a secret key never goes in a URL).
    beacon() {
      if (stopped) return 0;
      if (!beaconUrl || typeof env.sendBeacon !== 'function') {
        keepaliveNow();
        return 0;
      }
      let sent = 0;
      for (let round = 0; round < 8; round++) {
        const batch = pickBatch(eligible(), MAX_EVENTS_PER_REQUEST, KEEPALIVE_MAX_BYTES);
        if (!batch.length) break;
        const body = bodyOf(batch);
        const data = typeof env.Blob === 'function' ? new env.Blob([body], { type: 'text/plain;charset=UTF-8' }) : body;
        let ok = false;
        try {
          ok = env.sendBeacon(beaconUrl, data) === true;
        } catch (_) {
          ok = false;
        }
        if (!ok) {
          // Over the browser's quota: try a keepalive fetch when nothing went yet; whatever
          // stays queued goes on the next page load.
          if (round === 0) keepaliveNow();
          break;
        }
        queue.markBeacon(idsOf(batch), epoch);
        sent += batch.length;
      }
      stats.beaconed += sent;
      return sent;
    },
    // The page is shown again (tab back, or restored from the back/forward cache): what the
    // beacons carried is resent, to learn its outcome.
    shown() {
      epoch = newEpoch();
      schedule(config.flushIntervalMs);
    },
    stop() {
      stopped = true;
      cancel();
    },
    start() {
      stopped = false;
      schedule(0);
    },
  };
}
