// Delivery: batches, the persistent bounded queue, retries, beacons, opt-out.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createTracker } from '../src/index.mjs';
import { reply, acceptAll, config, fakeEnv, memoryStorage, EVENTS, KEY, basketLine } from './fakes.mjs';

const search = (i) => ({ query: 'shoes ' + i, result_count: i });

function tracker(env, extra) {
  const errors = [];
  const t = createTracker(config({ onError: (e) => errors.push(e), ...(extra || {}) }), env.injected);
  t.errors = errors;
  return t;
}

// A tracker past its start (which sends at once what earlier pages left).
async function started(env, extra) {
  const t = tracker(env, extra);
  await env.advance(0);
  return t;
}

test('events wait for the flush interval, then go in one POST /v1/events with the key header', async () => {
  const env = fakeEnv();
  const t = await started(env);
  t.searchPerformed(search(1));
  t.searchPerformed(search(2));
  await env.advance(999);
  assert.equal(env.eventRequests().length, 0);
  await env.advance(1);
  const [request] = env.eventRequests();
  assert.equal(request.url, EVENTS + '/v1/events');
  assert.equal(request.init.method, 'POST');
  assert.equal(request.init.headers['X-Api-Key'], KEY);
  assert.equal(request.init.headers['Content-Type'], 'application/json');
  assert.equal(request.init.credentials, 'omit');
  assert.equal(request.init.keepalive, true);
  assert.deepEqual(Object.keys(request.body), ['events']);
  assert.equal(request.body.events.length, 2);
  assert.equal(t.stats().delivered, 2);
  assert.equal(t.stats().queued, 0);
});

test('a batch never carries more than 500 events', async () => {
  const env = fakeEnv();
  const t = await started(env, { maxBatchBytes: 512 * 1024, maxQueueEvents: 5000, maxQueueBytes: 4 * 1024 * 1024 });
  t.onError(() => {});
  for (let i = 0; i < 1200; i++) t.searchPerformed(search(i));
  await env.advance(5000);
  const sizes = env.eventRequests().map((r) => r.body.events.length);
  assert.deepEqual(sizes, [500, 500, 200]);
  assert.equal(new Set(env.sentIds()).size, 1200);
  // Over the 60 KB keepalive limit, a batch is sent without keepalive.
  assert.equal(env.eventRequests()[0].init.keepalive, false);
});

test('a batch stays within its byte limit (60 KB by default: keepalive and beacon-sized)', async () => {
  const env = fakeEnv();
  const t = await started(env, { maxQueueBytes: 4 * 1024 * 1024 });
  for (let i = 0; i < 300; i++) t.searchPerformed({ query: 'é'.repeat(400) + i, result_count: i });
  await env.advance(5000);
  const requests = env.eventRequests();
  assert.ok(requests.length >= 5, 'split over several requests: ' + requests.length);
  for (const r of requests) {
    assert.ok(Buffer.byteLength(r.init.body, 'utf8') <= 60000, Buffer.byteLength(r.init.body) + ' bytes');
    assert.equal(r.init.keepalive, true);
  }
  assert.equal(new Set(env.sentIds()).size, 300);
  assert.equal(env.sentIds().length, 300);
});

test('the queue survives a reload: a new tracker over the same storage sends what the last page left', async () => {
  const storage = memoryStorage();
  const first = fakeEnv({ storage, handler: () => { throw new TypeError('Failed to fetch'); } });
  const a = await started(first);
  a.searchPerformed(search(1));
  a.productAddedToBasket(basketLine(1));
  await first.advance(1000);
  assert.equal(first.eventRequests().length, 1); // tried, failed
  const ids = first.sentIds();
  a.destroy(); // the page is gone

  const second = fakeEnv({ storage });
  const b = await started(second);
  await second.advance(0); // sent at start, without waiting for a new event
  assert.deepEqual(second.sentIds(), ids);
  assert.equal(b.stats().queued, 0);
  // and gone from storage once accepted: a third page sends nothing
  const third = fakeEnv({ storage });
  await started(third);
  await third.advance(60000);
  assert.equal(third.eventRequests().length, 0);
});

test('the queue is bounded: the oldest events are dropped, counted and reported', async () => {
  const env = fakeEnv({ handler: () => { throw new TypeError('offline'); } });
  const t = await started(env, { maxQueueEvents: 3 });
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push(t.searchPerformed(search(i)).event.event_id);
  const stats = t.stats();
  assert.equal(stats.queued, 3);
  assert.equal(stats.dropped, 2);
  const overflows = t.errors.filter((e) => e.code === 'queue_overflow');
  assert.equal(overflows.length, 2);
  assert.deepEqual(overflows.flatMap((e) => e.event_ids), ids.slice(0, 2));
  env.handler = (url, init) => acceptAll(init);
  await t.flush();
  assert.deepEqual(env.sentIds().slice(-3), ids.slice(2));
});

test('offline: network errors are retried with exponential backoff and jitter', async () => {
  const env = fakeEnv({ handler: () => { throw new TypeError('Failed to fetch'); } });
  const t = await started(env);
  t.searchPerformed(search(1));
  await env.advance(1000);
  assert.equal(env.eventRequests().length, 1);
  // equal jitter, base 1 s: [c/2, c) with c = 1 s, 2 s, 4 s...; random() = 0.5 here
  const delays = [];
  for (let i = 0; i < 4; i++) {
    delays.push(env.nextDelay());
    await env.advance(env.nextDelay());
  }
  assert.deepEqual(delays, [750, 1500, 3000, 6000]);
  assert.equal(env.eventRequests().length, 5);
  assert.ok(t.errors.every((e) => e.code === 'network_error' && e.source === 'events'));
  // the jitter: another random() gives another delay within the same window
  const other = fakeEnv({ random: 0.99, handler: () => { throw new TypeError('offline'); } });
  const u = await started(other);
  u.searchPerformed(search(1));
  await other.advance(1000);
  assert.ok(other.nextDelay() >= 990 && other.nextDelay() < 1000, String(other.nextDelay()));
  // back online: delivered once, never again
  env.handler = (url, init) => acceptAll(init);
  await env.advance(env.nextDelay());
  assert.equal(t.stats().delivered, 1);
  await env.advance(600000);
  assert.equal(env.eventRequests().length, 6);
});

test('the backoff is capped at maxBackoffMs', async () => {
  const env = fakeEnv({ random: 0.999, handler: () => { throw new TypeError('offline'); } });
  const t = await started(env, { maxBackoffMs: 10000 });
  t.searchPerformed(search(1));
  await env.advance(1000);
  for (let i = 0; i < 12; i++) await env.advance(env.nextDelay());
  assert.ok(env.nextDelay() <= 10000 && env.nextDelay() >= 5000, String(env.nextDelay()));
});

test('navigator.onLine false: nothing is tried until the browser says it is online', async () => {
  const env = fakeEnv();
  env.injected.navigator.onLine = false;
  const t = await started(env);
  t.searchPerformed(search(1));
  await env.advance(30000);
  assert.equal(env.eventRequests().length, 0);
  env.injected.navigator.onLine = true;
  env.window.dispatch('online');
  await env.advance(0);
  assert.equal(env.eventRequests().length, 1);
  assert.equal(t.stats().delivered, 1);
});

for (const status of [429, 503]) {
  test(`${status}: Retry-After is honoured (no request before it, even on flush), then a jittered retry`, async () => {
    let calls = 0;
    const env = fakeEnv({
      handler: (url, init) => {
        calls++;
        return calls === 1
          ? reply(status, { error: { code: status === 429 ? 'rate_limited' : 'unavailable', message: 'wait', retry_after_s: 30 } }, { 'Retry-After': '30' })
          : acceptAll(init);
      },
    });
    const t = await started(env);
    t.searchPerformed(search(1));
    await env.advance(1000);
    assert.equal(env.eventRequests().length, 1);
    const error = t.errors.find((e) => e.status === status);
    assert.ok(error, 'reported');
    assert.ok(error.retry_in_ms >= 30000, String(error.retry_in_ms));
    t.searchPerformed(search(2)); // a new event does not hurry it
    await t.flush(); // nor does flush()
    await env.advance(29999);
    assert.equal(env.eventRequests().length, 1);
    // within [30 s, 30 s + one base backoff): random() = 0.5 → 30.5 s after the answer
    await env.advance(500);
    assert.equal(env.eventRequests().length, 1);
    await env.advance(1);
    assert.equal(env.eventRequests().length, 2);
    assert.equal(t.stats().delivered, 2);
  });
}

test('Retry-After in the body only (error.retry_after_s) is honoured too, and the longer one wins', async () => {
  let calls = 0;
  const env = fakeEnv({
    handler: (url, init) => (++calls === 1
      ? reply(503, { error: { code: 'unavailable', message: 'x', retry_after_s: 12 } }, { 'Retry-After': '5' })
      : acceptAll(init)),
  });
  const t = await started(env);
  t.searchPerformed(search(1));
  await env.advance(1000);
  await env.advance(11999);
  assert.equal(env.eventRequests().length, 1);
  await env.advance(1000);
  assert.equal(env.eventRequests().length, 2);
  assert.equal(t.stats().queued, 0);
});

test('5xx without Retry-After: retried with backoff', async () => {
  let calls = 0;
  const env = fakeEnv({ handler: (url, init) => (++calls === 1 ? reply(500, { error: { code: 'internal', message: 'x' } }) : acceptAll(init)) });
  const t = await started(env);
  t.searchPerformed(search(1));
  await env.advance(1000);
  assert.equal(env.nextDelay(), 750);
  await env.advance(750);
  assert.equal(t.stats().delivered, 1);
});

test('what the server accepted is never sent again (same page, later pages)', async () => {
  const storage = memoryStorage();
  const env = fakeEnv({ storage });
  const t = await started(env);
  t.searchPerformed(search(1));
  t.searchPerformed(search(2));
  await env.advance(1000);
  t.searchPerformed(search(3));
  await t.flush();
  await env.advance(1000);
  await t.flush();
  env.document.hide(); // page hide: nothing is left to beacon
  env.document.show();
  await env.advance(60000);
  const ids = env.sentIds();
  assert.equal(ids.length, 3);
  assert.equal(new Set(ids).size, 3);
  assert.equal(env.beacons.length, 0);
  const later = fakeEnv({ storage });
  await started(later);
  await later.advance(60000);
  assert.equal(later.eventRequests().length, 0);
});

test('202 with rejected events: reported one by one, none resent; the accepted are delivered', async () => {
  const env = fakeEnv({
    handler: (url, init) => {
      const events = JSON.parse(init.body).events;
      return reply(202, {
        accepted: 1,
        duplicate_count: 0,
        rejected_count: 1,
        duplicates: [],
        rejected: [{ index: 1, event_id: events[1].event_id, reasons: [{ code: 'occurred_in_future', field: 'occurred_at', message: 'ahead' }] }],
      });
    },
  });
  const t = await started(env);
  t.searchPerformed(search(1));
  const second = t.searchPerformed(search(2)).event;
  await env.advance(1000);
  const rejected = t.errors.filter((e) => e.code === 'event_rejected');
  assert.equal(rejected.length, 1);
  assert.equal(rejected[0].event_id, second.event_id);
  assert.equal(rejected[0].reasons[0].code, 'occurred_in_future');
  assert.deepEqual([t.stats().delivered, t.stats().rejected, t.stats().queued], [1, 1, 0]);
  await env.advance(600000);
  assert.equal(env.eventRequests().length, 1);
});

test('duplicates count as delivered', async () => {
  const env = fakeEnv({
    handler: (url, init) => {
      const events = JSON.parse(init.body).events;
      return reply(202, {
        accepted: 0,
        duplicate_count: events.length,
        rejected_count: 0,
        duplicates: events.map((e, index) => ({ index, event_id: e.event_id })),
        rejected: [],
      });
    },
  });
  const t = await started(env);
  t.searchPerformed(search(1));
  t.searchPerformed(search(2));
  await env.advance(1000);
  const stats = t.stats();
  assert.equal(stats.delivered, 2);
  assert.equal(stats.duplicates, 2);
  assert.equal(stats.queued, 0);
  assert.equal(t.errors.length, 0);
  await env.advance(600000);
  assert.equal(env.eventRequests().length, 1);
});

for (const [status, code] of [[400, 'invalid_request'], [401, 'unauthenticated'], [403, 'origin_not_allowed']]) {
  test(`${status} is final: the batch is dropped and reported, never retried`, async () => {
    const env = fakeEnv({ handler: () => reply(status, { error: { code, message: 'no' } }) });
    const t = await started(env);
    t.searchPerformed(search(1));
    t.searchPerformed(search(2));
    await env.advance(1000);
    assert.equal(env.eventRequests().length, 1);
    const [error] = t.errors;
    assert.equal(error.code, code);
    assert.equal(error.status, status);
    assert.equal(error.dropped, 2);
    assert.equal(t.stats().queued, 0);
    await env.advance(3600000);
    assert.equal(env.eventRequests().length, 1);
    // the next events are sent (and answered) on their own
    t.searchPerformed(search(3));
    await env.advance(1000);
    assert.equal(env.eventRequests().length, 2);
    assert.equal(env.eventRequests()[1].body.events.length, 1);
  });
}

test('413: the batch is halved until it fits; a single event refused with 413 is dropped', async () => {
  const env = fakeEnv({
    handler: (url, init) => {
      const events = JSON.parse(init.body).events;
      if (events.some((e) => e.payload.query === 'huge')) return reply(413, { error: { code: 'request_too_large', message: 'x' } });
      return events.length > 2 ? reply(413, { error: { code: 'too_many_events', message: 'x' } }) : acceptAll(init);
    },
  });
  const t = await started(env);
  for (let i = 0; i < 6; i++) t.searchPerformed(search(i));
  t.searchPerformed({ query: 'huge', result_count: 0 });
  await env.advance(1000);
  assert.deepEqual(env.eventRequests().map((r) => r.body.events.length), [7, 4, 2, 2, 2, 1]);
  assert.equal(t.stats().delivered, 6);
  assert.equal(t.stats().queued, 0);
  assert.equal(t.errors.filter((e) => e.code === 'request_too_large').length, 1);
});

test('page hide: the queue goes by sendBeacon, text/plain Blob, the key in ?key=', async () => {
  const env = fakeEnv();
  const t = await started(env);
  t.searchPerformed(search(1));
  t.productAddedToBasket(basketLine(1));
  env.document.hide();
  assert.equal(env.beacons.length, 1);
  const [beacon] = env.beacons;
  assert.equal(beacon.url, EVENTS + '/v1/events?key=' + KEY);
  assert.ok(beacon.data instanceof Blob);
  assert.equal(beacon.data.type, 'text/plain;charset=utf-8'); // Blob lower-cases its type
  const body = JSON.parse(await beacon.data.text());
  assert.equal(body.events.length, 2);
  assert.equal(t.stats().beaconed, 2);
  // pagehide right after (desktop navigation): nothing is beaconed twice
  env.window.dispatch('pagehide', { persisted: false });
  assert.equal(env.beacons.length, 1);
  // a beacon's outcome is unknown: in this page life it is not resent...
  await env.advance(60000);
  assert.equal(env.eventRequests().length, 0);
  // ...but shown again, the page resends it by fetch to learn it (the server answers duplicates)
  env.document.show();
  await env.advance(1000);
  assert.deepEqual(env.sentIds(), body.events.map((e) => e.event_id));
  assert.equal(t.stats().queued, 0);
});

test('page hide: events a beacon carried are resent by the next page load', async () => {
  const storage = memoryStorage();
  const env = fakeEnv({ storage });
  const t = await started(env);
  const id = t.searchPerformed(search(1)).event.event_id;
  env.document.hide();
  t.destroy();
  const next = fakeEnv({ storage });
  await started(next);
  await next.advance(0);
  assert.deepEqual(next.sentIds(), [id]);
});

test('page hide without sendBeacon: a keepalive fetch instead', async () => {
  const env = fakeEnv({ injected: { sendBeacon: null } });
  const t = await started(env);
  t.searchPerformed(search(1));
  env.document.hide();
  await env.advance(0);
  const [request] = env.eventRequests();
  assert.equal(request.url, EVENTS + '/v1/events');
  assert.equal(request.init.keepalive, true);
  assert.equal(request.init.headers['X-Api-Key'], KEY);
  assert.equal(t.stats().delivered, 1);
});

test('page hide when the browser refuses the beacon (quota): a keepalive fetch instead', async () => {
  const env = fakeEnv();
  env.beaconResult = false;
  const t = await started(env);
  t.searchPerformed(search(1));
  env.document.hide();
  assert.equal(env.beacons.length, 1);
  await env.advance(0);
  assert.equal(env.eventRequests().length, 1);
  assert.equal(env.eventRequests()[0].init.keepalive, true);
  assert.equal(t.stats().queued, 0);
});

test('a secret key (a back end) never goes in a URL: page hide uses a keepalive fetch', async () => {
  const env = fakeEnv();
  const t = await started(env, { key: 'cwk_secret_backend' });
  t.searchPerformed(search(1));
  env.document.hide();
  await env.advance(0);
  assert.equal(env.beacons.length, 0);
  const [request] = env.eventRequests();
  assert.ok(!request.url.includes('key='));
  assert.equal(request.init.headers['X-Api-Key'], 'cwk_secret_backend');
});

test('optOut() stops sending, clears the queue, and holds across reloads until optIn()', async () => {
  const storage = memoryStorage();
  const env = fakeEnv({ storage, handler: () => { throw new TypeError('offline'); } });
  const t = await started(env);
  t.searchPerformed(search(1));
  t.searchPerformed(search(2));
  await env.advance(1000);
  assert.equal(t.stats().queued, 2);
  t.optOut();
  assert.equal(t.optedOut(), true);
  assert.equal(t.stats().queued, 0);
  assert.equal(storage.getItem('cartwise.queue'), null);
  env.handler = (url, init) => acceptAll(init);
  const refused = t.searchPerformed(search(3));
  assert.equal(refused.ok, false);
  assert.equal(refused.error.code, 'opted_out');
  env.document.hide();
  await env.advance(600000);
  assert.equal(env.eventRequests().length, 1); // only the attempt before the opt-out
  assert.equal(env.beacons.length, 0);

  const next = fakeEnv({ storage });
  const u = await started(next);
  assert.equal(u.optedOut(), true);
  assert.equal(u.searchPerformed(search(4)).error.code, 'opted_out');
  u.optIn();
  u.searchPerformed(search(5));
  await next.advance(1000);
  assert.equal(next.sentIds().length, 1);
});

test('storage that throws (blocked, quota): the tracker goes on in memory', async () => {
  const broken = {
    getItem() { throw new Error('SecurityError'); },
    setItem() { throw new Error('QuotaExceededError'); },
    removeItem() { throw new Error('SecurityError'); },
  };
  const env = fakeEnv({ storage: broken });
  const t = await started(env);
  assert.equal(t.searchPerformed(search(1)).ok, true);
  await env.advance(1000);
  assert.equal(t.stats().delivered, 1);
  assert.equal(t.stats().persistent, false);
});

test('events in flight are not sent again: not by flush(), nor by a page-hide beacon', async () => {
  let release;
  const env = fakeEnv({
    handler: (url, init) => new Promise((resolve) => { release = () => resolve(acceptAll(init)); }),
  });
  const t = await started(env);
  const first = t.searchPerformed(search(1)).event.event_id;
  await env.advance(1000); // sent, unanswered
  assert.equal(env.eventRequests().length, 1);
  const second = t.searchPerformed(search(2)).event.event_id;
  t.flush();
  env.document.hide(); // the beacon carries what is not in flight, only
  assert.equal(env.beacons.length, 1);
  const beaconed = JSON.parse(await env.beacons[0].data.text()).events.map((e) => e.event_id);
  assert.deepEqual(beaconed, [second]);
  release();
  await env.advance(60000);
  assert.deepEqual(env.sentIds(), [first]);
  assert.equal(t.stats().delivered, 1);
});
