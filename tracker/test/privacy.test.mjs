// What never leaves the browser: personal data, order events from a page, a bad config.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createTracker, cartwise } from '../src/index.mjs';
import { looksLikeEmail, nestsDeeperThan, uuid4, refusal } from '../src/contract.mjs';
import { config, fakeEnv, basketLine, acceptAll, reply } from './fakes.mjs';

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function setup(extra, envOptions) {
  const env = fakeEnv(envOptions);
  const errors = [];
  const t = createTracker(config({ onError: (e) => errors.push(e), ...(extra || {}) }), env.injected);
  return { env, t, errors };
}

async function nothingLeft(env, t) {
  await env.advance(600000);
  env.document.hide();
  assert.equal(env.eventRequests().length, 0, 'nothing sent');
  assert.equal(env.beacons.length, 0, 'nothing beaconed');
  assert.equal(t.stats().queued, 0, 'nothing queued');
  const stored = env.storage.getItem('cartwise.queue');
  assert.ok(!stored || JSON.parse(stored).items.length === 0, 'nothing stored');
}

test('an e-mail field in a payload is refused locally, named by its path, never its value', async () => {
  const { env, t, errors } = setup();
  const result = t.track('search_performed', { query: 'x', result_count: 1, email: 'jane@example.com' });
  assert.equal(result.ok, false);
  assert.equal(result.error.code, 'personal_data_refused');
  assert.equal(result.error.field, 'payload.email');
  assert.ok(!JSON.stringify(errors).includes('jane@example.com'));
  assert.equal(t.stats().refused, 1);
  await nothingLeft(env, t);
});

test('forbidden fields are found at any depth, whatever their case and separators', async () => {
  const { env, t } = setup({ key: 'cwk_backend' });
  const result = t.cartValidated({ order_id: 'o-1', total: '9', lines: [basketLine(1), { ...basketLine(2), Email_Address: 'x' }] });
  assert.equal(result.error.code, 'personal_data_refused');
  assert.equal(result.error.field, 'payload.lines[1].Email_Address');
  for (const field of ['First-Name', 'PHONE', 'zip_code', 'date_of_birth', 'IP', 'gender']) {
    assert.equal(t.track('page_viewed', { url: 'https://s', page_type: 'home', extra: { [field]: 1 } }).error.code, 'personal_data_refused', field);
  }
  await nothingLeft(env, t);
});

test('an e-mail as the shopper id is refused locally (events, experiences and plays alike)', async () => {
  const { env, t } = setup({ shopperId: 'Jane.Doe@example.com' });
  const result = t.pageViewed({ page_type: 'home' });
  assert.equal(result.error.code, 'personal_data_refused');
  assert.equal(result.error.field, 'shopper_id');
  const played = await t.play('token');
  assert.equal(played.error.code, 'personal_data_refused');
  await nothingLeft(env, t);
  assert.equal(env.requests.length, 0, 'no X-Shopper-Id header carried it either');
});

test('a shopper id that is no identifier is refused locally', async () => {
  const { env, t } = setup({ shopperId: 'not an id' });
  assert.equal(t.pageViewed({ page_type: 'home' }).error.code, 'invalid_shopper_id');
  await nothingLeft(env, t);
});

test('a 600,000-character "a@....@" shopper id is refused in under 200 ms', () => {
  const hostile = 'a@' + '.'.repeat(599997) + '@';
  assert.equal(hostile.length, 600000);
  const started = performance.now();
  assert.equal(looksLikeEmail(hostile), false);
  const { t } = setup({ shopperId: hostile });
  const result = t.pageViewed({ page_type: 'home' });
  const elapsed = performance.now() - started;
  assert.equal(result.ok, false);
  assert.equal(result.error.field, 'shopper_id');
  assert.ok(elapsed < 200, elapsed.toFixed(1) + ' ms');
  // the same shape within the length limit is linear too, and still no e-mail (two "@")
  const short = 'a@' + '.'.repeat(240) + '@';
  assert.equal(looksLikeEmail(short), false);
});

test('looksLikeEmail is the server\'s linear looks_like_email', () => {
  const yes = ['a@b.c', 'jane.doe@example.com', 'x@sub.domain.org', 'a@b..c', 'a@.b.c'];
  const no = ['', '@b.c', 'a@', 'a@b', 'a@.c', 'a@b.', 'a@@b.c', 'a@b@c.d', 'a b@c.d', 'a@b.c\n', 'a\t@b.c', 'customer-42', 'a@' + 'b'.repeat(251) + '.c'];
  for (const text of yes) assert.equal(looksLikeEmail(text), true, text);
  for (const text of no) assert.equal(looksLikeEmail(text), false, JSON.stringify(text));
  assert.equal(looksLikeEmail('a@' + 'b'.repeat(250) + '.c'), true); // 254 characters
  assert.equal(looksLikeEmail('\u{1F600}'.repeat(200) + '@b.c'), true); // 204 code points, as Python counts
  assert.equal(looksLikeEmail('a@b.c\ufeff'), true); // no space for Python
  assert.equal(looksLikeEmail('a@b.c\u3000'), false); // ideographic space
  assert.equal(looksLikeEmail('a@b.c\x1f'), false); // a separator Python counts as space
});

test('a payload nested deeper than MAX_DEPTH (16, the event being 1) is refused as too_deep', async () => {
  const nest = (n) => (n === 0 ? {} : { a: nest(n - 1) });
  const { env, t } = setup();
  // event (1) > payload (2) > x (3) > 13 more objects (16): the limit itself is fine
  assert.equal(t.track('search_performed', { query: 'q', result_count: 0, x: nest(13) }).ok, true);
  const deep = t.track('search_performed', { query: 'q', result_count: 0, x: nest(14) });
  assert.equal(deep.error.code, 'too_deep');
  const arrays = t.track('search_performed', { query: 'q', result_count: 0, x: JSON.parse('['.repeat(20) + ']'.repeat(20)) });
  assert.equal(arrays.error.code, 'too_deep');
  // far deeper than the engine's stack: refused, not thrown
  let hostile = {};
  for (let i = 0; i < 200000; i++) hostile = { a: hostile };
  assert.equal(t.track('search_performed', hostile).error.code, 'too_deep');
  await env.advance(1000);
  assert.equal(env.sentIds().length, 1);
  assert.equal(nestsDeeperThan([[[]]], 3), false);
  assert.equal(nestsDeeperThan([[[[]]]], 3), true);
});

test('too_deep is checked first, as the server does', () => {
  const nest = (n) => (n === 0 ? { email: 'x' } : { a: nest(n - 1) });
  assert.equal(refusal({ shopper_id: 'c-1', payload: nest(20) }).code, 'too_deep');
});

test('a publishable key may not send cart_validated nor order_status_changed: secret_key_required', async () => {
  const { env, t, errors } = setup();
  const cart = t.cartValidated({ order_id: 'o-1', total: '9.99', lines: [basketLine(1)] });
  assert.equal(cart.ok, false);
  assert.equal(cart.error.code, 'secret_key_required');
  assert.equal(cart.error.field, 'type');
  assert.equal(t.orderStatusChanged({ order_id: 'o-1', status: 'shipped' }).error.code, 'secret_key_required');
  assert.equal(t.track('cart_validated', {}).error.code, 'secret_key_required');
  assert.equal(errors.filter((e) => e.code === 'secret_key_required').length, 3);
  await nothingLeft(env, t);
});

test('with a secret key (a retailer back end), cart_validated and order_status_changed are sent', async () => {
  const { env, t } = setup({ key: 'cwk_secret_backend', shopperSignature: undefined });
  assert.equal(t.cartValidated({ order_id: 'o-1', total: '9.99', lines: [basketLine(1)] }).ok, true);
  assert.equal(t.orderStatusChanged({ order_id: 'o-1', status: 'shipped' }).ok, true);
  await env.advance(1000);
  assert.deepEqual(env.eventRequests()[0].body.events.map((e) => e.type), ['cart_validated', 'order_status_changed']);
  assert.equal(env.eventRequests()[0].init.headers['X-Api-Key'], 'cwk_secret_backend');
});

test('every event has its own uuid4 event_id and the contract envelope', async () => {
  const { env, t } = setup();
  const ids = new Set();
  for (let i = 0; i < 100; i++) {
    const { event } = t.searchPerformed({ query: 'q' + i, result_count: i });
    assert.match(event.event_id, UUID4);
    ids.add(event.event_id);
  }
  assert.equal(ids.size, 100);
  await env.advance(1000);
  const [first] = env.eventRequests()[0].body.events;
  assert.deepEqual(Object.keys(first).sort(), ['event_id', 'occurred_at', 'payload', 'schema_version', 'session_id', 'shopper_id', 'type']);
  assert.equal(first.schema_version, 1);
  assert.equal(first.shopper_id, 'customer-42');
  assert.equal(first.occurred_at, '2025-01-15T12:00:00.000Z');
  assert.match(first.session_id, UUID4);
  // without crypto.randomUUID (insecure context), and without crypto at all
  assert.match(uuid4({ getRandomValues: (b) => globalThis.crypto.getRandomValues(b) }), UUID4);
  assert.match(uuid4(null), UUID4);
  assert.match(uuid4({ randomUUID() { throw new Error('insecure'); } }), UUID4);
});

test('the session id holds for 30 minutes of activity, and changes after 30 minutes of silence', async () => {
  const { env, t } = setup();
  const a = t.searchPerformed({ query: 'q', result_count: 0 }).event.session_id;
  await env.advance(29 * 60000);
  const b = t.searchPerformed({ query: 'q', result_count: 0 }).event.session_id;
  await env.advance(31 * 60000);
  const c = t.searchPerformed({ query: 'q', result_count: 0 }).event.session_id;
  assert.equal(a, b);
  assert.notEqual(b, c);
});

test('configuration: endpoint or eventsUrl required, any non-empty key, a shopper id', () => {
  const bad = [
    { endpoint: undefined, eventsUrl: undefined },
    { endpoint: 'ftp://x', eventsUrl: undefined },
    { experiencesUrl: 'javascript:alert(1)' },
    { key: '' },
    { key: 'cwpk_ with space' },
    { key: 42 },
    { shopperId: '' },
  ];
  for (const extra of bad) {
    const { env, t, errors } = setup(extra);
    assert.equal(errors[0] && errors[0].code, 'invalid_config', JSON.stringify(extra));
    assert.equal(t.searchPerformed({ query: 'q', result_count: 0 }).error.code, 'invalid_config');
    assert.equal(env.requests.length, 0);
  }
  for (const key of ['cwpk_abc', 'cwk_abc', 'anything-else']) {
    const { errors } = setup({ key });
    assert.equal(errors.length, 0, key);
  }
  // endpoint alone serves the three services
  const { errors } = setup({ eventsUrl: undefined, experiencesUrl: undefined, playsUrl: undefined });
  assert.equal(errors.length, 0);
});

test('endpoint alone: every service at its path under it', async () => {
  const env = fakeEnv({
    handler: (url, init) => (url.includes('/v1/events') ? acceptAll(init) : url.includes('/v1/plays') ? reply(201, { play_id: 'p' }) : reply(204)),
  });
  const t = createTracker({ endpoint: 'https://api.test/', key: 'cwpk_x', shopperId: 'c-1', shopperSignature: 'ff' }, env.injected);
  t.onExperiences(() => {});
  t.searchPerformed({ query: 'q', result_count: 0 });
  await env.advance(1000);
  await t.play('tok');
  assert.deepEqual(env.requests.map((r) => r.url.split('?')[0]), [
    'https://api.test/v1/events',
    'https://api.test/v1/experiences', // 204: asked once more
    'https://api.test/v1/experiences',
    'https://api.test/v1/plays',
  ]);
});

test('unknown event types and non-object payloads are refused', () => {
  const { t } = setup();
  assert.equal(t.track('page_seen', {}).error.code, 'unknown_event_type');
  assert.equal(t.track('search_performed', [1]).error.code, 'invalid_payload');
  assert.equal(t.track('search_performed', 'text').error.code, 'invalid_payload');
  const cyclic = {};
  cyclic.self = cyclic;
  assert.equal(t.track('search_performed', cyclic).error.code, 'invalid_payload');
});

test('cartwise (the page\'s default tracker) refuses calls before init, then forwards them', async () => {
  assert.equal(cartwise.track('page_viewed', {}).error.code, 'not_initialized');
  assert.equal((await cartwise.flush()).error.code, 'not_initialized');
  const env = fakeEnv();
  cartwise.init(config(), env.injected);
  assert.equal(cartwise.searchPerformed({ query: 'q', result_count: 0 }).ok, true);
  await env.advance(1000);
  assert.equal(env.sentIds().length, 1);
  cartwise.destroy();
});
