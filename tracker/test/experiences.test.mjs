// Experiences (waiting for the latest event's decision), rendering, and the game's calls.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createTracker } from '../src/index.mjs';
import { isHttpUrl } from '../src/experiences.mjs';
import { reply, acceptAll, config, fakeEnv, settle, EXPERIENCES, PLAYS, KEY } from './fakes.mjs';

const SIGNATURE = 'ab'.repeat(32);

function current(eventId, experiences) {
  return {
    shopper_id: 'customer-42',
    event_id: eventId,
    occurred_at: '2025-01-15T12:00:00Z',
    decided_at: '2025-01-15T12:00:00.200Z',
    tree_version: 'v1',
    node_id: 'basket',
    experiences: experiences || [
      { experience_id: 'exp-1', type: 'tension_cart', campaign_id: 'camp-1', details: { threshold: '50', reward: 'free delivery' } },
    ],
  };
}

// The experiences API answers through `answer(url, init)`; the ingest API accepts all.
function setup(answer, extra) {
  const gets = [];
  const env = fakeEnv({
    handler: (url, init, request) => {
      if (url.startsWith(EXPERIENCES)) {
        gets.push(request);
        return answer(url, init, gets.length);
      }
      return acceptAll(init);
    },
  });
  const errors = [];
  const t = createTracker(config({ onError: (e) => errors.push(e), ...(extra || {}) }), env.injected);
  return { env, t, errors, gets };
}

const afterOf = (request) => new URL(request.url).searchParams.get('after');

test('onExperiences: waits for the decision of the latest delivered event, with the shopper headers', async () => {
  const { env, t, gets } = setup((url) => reply(200, current(new URL(url).searchParams.get('after'))));
  const seen = [];
  t.onExperiences((answer) => seen.push(answer));
  t.pageViewed({ page_type: 'home' });
  const { event } = t.productAddedToBasket({ product_id: 'sku-1', quantity: 1, unit_price: '9.99' });
  await env.advance(1000);
  // Each event went at once (the page listens); the last wait is for the latest event.
  const last = gets[gets.length - 1];
  const url = new URL(last.url);
  assert.equal(url.origin + url.pathname, EXPERIENCES + '/v1/experiences');
  assert.equal(url.searchParams.get('after'), event.event_id);
  assert.equal(url.searchParams.get('wait_ms'), '5000');
  assert.equal(last.init.method, 'GET');
  assert.deepEqual(last.init.headers, { 'X-Api-Key': KEY, 'X-Shopper-Id': 'customer-42', 'X-Shopper-Signature': SIGNATURE });
  const latest = seen[seen.length - 1];
  assert.equal(latest.event_id, event.event_id);
  assert.equal(latest.experiences[0].experience_id, 'exp-1');
});

test('wait_ms follows config.waitMs, clamped to 0..10000', async () => {
  for (const [waitMs, expected] of [[2500, '2500'], [60000, '10000'], [-5, '0']]) {
    const { env, t, gets } = setup(() => reply(204), { waitMs });
    t.onExperiences(() => {});
    t.searchPerformed({ query: 'q', result_count: 0 });
    await env.advance(1000);
    assert.equal(new URL(gets[0].url).searchParams.get('wait_ms'), expected);
  }
});

test('a newer event aborts the older wait; a late answer to the older one is ignored', async () => {
  const pending = [];
  const { env, t, gets } = setup((url, init) => new Promise((resolve, reject) => {
    pending.push({ resolve, signal: init.signal, after: new URL(url).searchParams.get('after') });
    init.signal.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })));
  }));
  const seen = [];
  t.onExperiences((answer) => seen.push(answer.event_id));
  const first = t.pageViewed({ page_type: 'home' }).event;
  await env.advance(1000);
  assert.equal(gets.length, 1);
  assert.equal(afterOf(gets[0]), first.event_id);
  const second = t.searchPerformed({ query: 'q', result_count: 3 }).event;
  await env.advance(1000);
  assert.equal(gets.length, 2);
  assert.equal(afterOf(gets[1]), second.event_id);
  assert.equal(pending[0].signal.aborted, true);
  assert.equal(pending[1].signal.aborted, false);
  pending[1].resolve(reply(200, current(second.event_id)));
  await settle();
  assert.deepEqual(seen, [second.event_id]);
});

test('without AbortController, an older wait\'s answer is still ignored', async () => {
  const pending = [];
  const env0 = { AbortController: null };
  const gets = [];
  const env = fakeEnv({
    injected: env0,
    handler: (url, init, request) => {
      if (!url.startsWith(EXPERIENCES)) return acceptAll(init);
      gets.push(request);
      return new Promise((resolve) => pending.push(resolve));
    },
  });
  const t = createTracker(config(), env.injected);
  const seen = [];
  t.onExperiences((answer) => seen.push(answer.event_id));
  const first = t.pageViewed({ page_type: 'home' }).event;
  await env.advance(1000);
  const second = t.searchPerformed({ query: 'q', result_count: 3 }).event;
  await env.advance(1000);
  pending[0](reply(200, current(first.event_id)));
  pending[1](reply(200, current(second.event_id)));
  await settle();
  assert.deepEqual(seen, [second.event_id]);
});

test('204 (no decision within the wait) is asked once more, then no more: never blind polling', async () => {
  const { env, t, gets } = setup(() => reply(204));
  const seen = [];
  t.onExperiences((answer) => seen.push(answer));
  const { event } = t.pageViewed({ page_type: 'home' });
  await env.advance(1000);
  assert.equal(gets.length, 2);
  assert.deepEqual(gets.map(afterOf), [event.event_id, event.event_id]);
  await env.advance(3600000);
  assert.equal(gets.length, 2);
  assert.equal(seen.length, 0);
});

test('204 then 200: the second ask delivers the decision', async () => {
  const { env, t, gets } = setup((url, init, n) => (n === 1 ? reply(204) : reply(200, current(new URL(url).searchParams.get('after')))));
  const seen = [];
  t.onExperiences((answer) => seen.push(answer));
  t.pageViewed({ page_type: 'home' });
  await env.advance(1000);
  assert.equal(gets.length, 2);
  assert.equal(seen.length, 1);
});

test('no event, or no listener: no experiences request at all', async () => {
  const idle = setup(() => reply(200, current('x')));
  idle.t.onExperiences(() => {});
  await idle.env.advance(3600000);
  assert.equal(idle.gets.length, 0);
  const deaf = setup(() => reply(200, current('x')));
  deaf.t.pageViewed({ page_type: 'home' });
  await deaf.env.advance(1000);
  assert.equal(deaf.gets.length, 0);
});

test('experience_* events do not ask again (the page already shows that decision)', async () => {
  const { env, t, gets } = setup(() => reply(204));
  t.onExperiences(() => {});
  t.experienceDisplayed({ experience_id: 'exp-1' });
  t.experienceClicked({ experience_id: 'exp-1' });
  await env.advance(1000);
  assert.equal(gets.length, 0);
});

test('a publishable key without shopperSignature: reported once, nothing asked', async () => {
  const { env, t, gets, errors } = setup(() => reply(200, current('x')), { shopperSignature: undefined });
  t.onExperiences(() => {});
  t.pageViewed({ page_type: 'home' });
  await env.advance(1000);
  t.pageViewed({ page_type: 'home' });
  await env.advance(1000);
  assert.equal(gets.length, 0);
  assert.equal(errors.filter((e) => e.code === 'missing_signature').length, 1);
});

for (const [status, code] of [[401, 'shopper_signature_missing'], [403, 'shopper_signature_invalid'], [403, 'origin_not_allowed']]) {
  test(`experiences ${status} ${code}: reported to onError, not retried`, async () => {
    const { env, t, gets, errors } = setup(() => reply(status, { error: { code, message: 'no' } }));
    const seen = [];
    t.onExperiences((a) => seen.push(a));
    t.pageViewed({ page_type: 'home' });
    await env.advance(3600000);
    assert.equal(gets.length, 1);
    assert.equal(seen.length, 0);
    const error = errors.find((e) => e.source === 'experiences');
    assert.equal(error.code, code);
    assert.equal(error.status, status);
  });
}

test('a listener that throws reaches neither the tracker nor the others', async () => {
  const { env, t } = setup((url) => reply(200, current(new URL(url).searchParams.get('after'))));
  const seen = [];
  t.onExperiences(() => { throw new Error('page bug'); });
  const off = t.onExperiences(() => seen.push('second'));
  t.pageViewed({ page_type: 'home' });
  await env.advance(1000);
  assert.deepEqual(seen, ['second']);
  off();
  t.pageViewed({ page_type: 'home' });
  await env.advance(1000);
  assert.deepEqual(seen, ['second']);
});

// --- rendering ---------------------------------------------------------------------------

const hostile = {
  experience_id: 'exp-9',
  type: 'personalized_promotion',
  campaign_id: 'camp-9',
  details: {
    title: '<img src=x onerror=alert(1)>Save 10%',
    text: '<script>alert(2)</script>',
    image_url: 'javascript:alert(3)',
  },
};

function typesSent(env) {
  return env.sentIds().length ? env.eventRequests().flatMap((r) => r.body.events.map((e) => e.type)) : [];
}

test('render: text only through textContent, no HTML, no non-http(s) image', () => {
  const { env, t } = setup(() => reply(204));
  const slot = env.document.createElement('div');
  const node = t.render(hostile, slot); // FakeElement throws on innerHTML / insertAdjacentHTML
  assert.ok(node);
  assert.equal(slot.children.length, 1);
  assert.equal(node.attributes['data-experience-id'], 'exp-9');
  assert.deepEqual(node.children.map((c) => c.tagName), ['STRONG', 'P']);
  assert.equal(node.children[0].textContent, '<img src=x onerror=alert(1)>Save 10%');
  assert.equal(node.children[1].textContent, '<script>alert(2)</script>');
  for (const url of ['javascript:alert(1)', 'data:image/png;base64,AAAA', '//evil.test/x.png', 'vbscript:x', ' java\nscript:x']) {
    assert.equal(isHttpUrl(url), false, url);
  }
  const withImage = t.render({ ...hostile, details: { ...hostile.details, image_url: 'https://cdn.shop.test/a.png' } }, slot);
  assert.equal(withImage.children[0].tagName, 'IMG');
  assert.equal(withImage.children[0].src, 'https://cdn.shop.test/a.png');
  assert.equal(slot.children.length, 1, 'replaces what the slot showed');
});

test('experience_displayed is sent once, when at least half of it is visible; experience_clicked on every click', async () => {
  const { env, t } = setup(() => reply(204));
  const slot = env.document.createElement('div');
  const node = t.render(hostile, slot);
  const [observer] = env.observers;
  assert.deepEqual(observer.options, { threshold: 0.5 });
  observer.show(0.3);
  await env.advance(1000);
  assert.deepEqual(typesSent(env), []);
  observer.show(0.6);
  observer.show(1);
  await env.advance(1000);
  assert.deepEqual(typesSent(env), ['experience_displayed']);
  assert.deepEqual(env.eventRequests()[0].body.events[0].payload, { experience_id: 'exp-9', campaign_id: 'camp-9' });
  assert.equal(observer.disconnected, true);
  node.click();
  node.click();
  await env.advance(1000);
  assert.deepEqual(typesSent(env), ['experience_displayed', 'experience_clicked', 'experience_clicked']);
});

test('displayed only while the page is visible; once per page view', async () => {
  const { env, t } = setup(() => reply(204));
  const slot = env.document.createElement('div');
  env.document.visibilityState = 'hidden';
  t.render(hostile, slot);
  env.observers[0].show(1);
  await env.advance(1000);
  assert.deepEqual(typesSent(env), []);
  env.document.show();
  await env.advance(1000);
  assert.deepEqual(typesSent(env), ['experience_displayed']);
  // the same experience rendered again in the same page view: not displayed twice
  t.render(hostile, slot);
  env.observers[1].show(1);
  await env.advance(1000);
  assert.deepEqual(typesSent(env), ['experience_displayed']);
  // a new page view (SPA navigation): it counts again
  t.pageViewed({ page_type: 'basket' });
  t.render(hostile, slot);
  env.observers[2].show(1);
  await env.advance(1000);
  assert.deepEqual(typesSent(env), ['experience_displayed', 'page_viewed', 'experience_displayed']);
});

test('observe: the page\'s own element; without IntersectionObserver, displayed at once; the returned stop ends it', async () => {
  const { env, t } = setup(() => reply(204));
  const own = env.document.createElement('section');
  let clicked = 0;
  const stop = t.observe(own, hostile, { onClick: () => clicked++ });
  env.observers[0].show(0.75);
  own.click();
  stop();
  own.click();
  await env.advance(1000);
  assert.deepEqual(typesSent(env), ['experience_displayed', 'experience_clicked']);
  assert.equal(clicked, 1);

  const bare = fakeEnv({ injected: { IntersectionObserver: null } });
  const u = createTracker(config(), bare.injected);
  u.observe(bare.document.createElement('div'), { experience_id: 'exp-2' });
  await bare.advance(1000);
  assert.deepEqual(typesSent(bare), ['experience_displayed']);
});

test('an experience without a valid experience_id is refused, not tracked', async () => {
  const { env, t, errors } = setup(() => reply(204));
  t.observe(env.document.createElement('div'), { experience_id: '<bad>' });
  assert.equal(t.render(null, env.document.createElement('div')), null);
  await env.advance(1000);
  assert.equal(env.requests.length, 0);
  assert.deepEqual(errors.map((e) => e.code), ['invalid_experience', 'invalid_experience']);
});

// --- plays ---------------------------------------------------------------------------------

function playSetup(answer, extra) {
  const calls = [];
  const env = fakeEnv({ handler: (url, init, request) => { calls.push(request); return answer(url, init, calls.length); } });
  const errors = [];
  const t = createTracker(config({ onError: (e) => errors.push(e), ...(extra || {}) }), env.injected);
  return { env, t, calls, errors };
}

const PLAY = { play_id: 'p-1', order_id: 'o-1', campaign_id: 'c-1', outcome: 'won', reason: 'drawn', prize_value: '10', played_at: '2025-01-15T12:00:00Z', replayed: false, claimed: false, voided: false, paid: false };

test('play and claim: POST to playsUrl with the shopper headers; the answer is resolved', async () => {
  const { t, calls } = playSetup((url) => reply(url.endsWith('/claim') ? 200 : 201, { ...PLAY, claimed: url.endsWith('/claim') }));
  const played = await t.play('tok.en');
  assert.equal(played.ok, true);
  assert.equal(played.status, 201);
  assert.equal(played.play.outcome, 'won');
  assert.equal(calls[0].url, PLAYS + '/v1/plays');
  assert.deepEqual(calls[0].body, { play_token: 'tok.en' });
  assert.deepEqual(calls[0].init.headers, { 'X-Api-Key': KEY, 'X-Shopper-Id': 'customer-42', 'X-Shopper-Signature': SIGNATURE, 'Content-Type': 'application/json' });
  const claimed = await t.claim('p-1', 'tok.en', 'winner@example.com');
  assert.equal(claimed.ok, true);
  assert.equal(claimed.play.claimed, true);
  assert.equal(calls[1].url, PLAYS + '/v1/plays/p-1/claim');
  assert.deepEqual(calls[1].body, { play_token: 'tok.en', email: 'winner@example.com' });
});

test('play: 503 is retried after its Retry-After; a 409 is final and reported', async () => {
  const { env, t, calls, errors } = playSetup((url, init, n) => (n === 1
    ? reply(503, { error: { code: 'unavailable', message: 'x', retry_after_s: 2 } }, { 'Retry-After': '2' })
    : reply(200, { ...PLAY, replayed: true })));
  const pending = t.play('tok');
  await env.advance(1999);
  assert.equal(calls.length, 1);
  await env.advance(1);
  const played = await pending;
  assert.equal(played.ok, true);
  assert.equal(played.play.replayed, true);
  assert.equal(calls.length, 2);

  const refused = playSetup(() => reply(409, { error: { code: 'order_already_played', message: 'x' } }));
  const result = await refused.t.play('tok');
  assert.equal(result.ok, false);
  assert.equal(result.error.code, 'order_already_played');
  assert.equal(refused.calls.length, 1);
  assert.equal(refused.errors[0].code, 'order_already_played');
  assert.equal(errors.length, 0);
});

test('play without a signature (publishable key): refused locally', async () => {
  const { t, calls } = playSetup(() => reply(201, PLAY), { shopperSignature: '' });
  const result = await t.play('tok');
  assert.equal(result.error.code, 'missing_signature');
  assert.equal(calls.length, 0);
});

test('while the page listens for experiences, an event is sent at once, not after flushIntervalMs', async () => {
  const { env, t, gets } = setup((url) => reply(200, current(new URL(url).searchParams.get('after'))), { flushIntervalMs: 5000 });
  t.onExperiences(() => {});
  const { event } = t.productAddedToBasket({ product_id: 'sku-1', quantity: 1, unit_price: '9.99' });
  await env.advance(10);
  assert.equal(gets.length, 1, 'the experiences were asked within 10 ms, so the event was sent');
  assert.equal(afterOf(gets[0]), event.event_id);
});

test('expect(eventId): waits for an event the back end sent (a confirmed order)', async () => {
  const { env, t, gets } = setup((url) => reply(200, current(new URL(url).searchParams.get('after'))));
  const seen = [];
  assert.equal(t.expect('6f1c2b3a-0000-4000-8000-000000000001'), false, 'nobody listens yet');
  t.onExperiences((answer) => seen.push(answer));
  assert.equal(t.expect('6f1c2b3a-0000-4000-8000-000000000001'), true);
  await env.advance(10);
  assert.equal(gets.length, 1);
  assert.equal(afterOf(gets[0]), '6f1c2b3a-0000-4000-8000-000000000001');
  assert.equal(seen[0].event_id, '6f1c2b3a-0000-4000-8000-000000000001');
});
