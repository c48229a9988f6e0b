// cartwise browser tracker: shopper events out, personalized experiences in.

import {
  EVENT_TYPES,
  FORBIDDEN_FIELDS,
  MAX_EVENTS_PER_REQUEST,
  MAX_REQUEST_BYTES,
  SCHEMA_VERSION,
  SECRET_KEY_TYPES,
  PUBLISHABLE_KEY_PREFIX,
  refusal,
  shopperRefusal,
  utf8Length,
  uuid4,
} from './contract.mjs';
import { safeStorage, createQueue, createSession } from './storage.mjs';
import { createSender, KEEPALIVE_MAX_BYTES } from './sender.mjs';
import { createExperienceWaiter, createExhibitor } from './experiences.mjs';
import { readJson, retryAfterMs, httpError } from './http.mjs';

export const VERSION = '0.1.0';

const DEFAULTS = {
  flushIntervalMs: 1000,
  maxBatchEvents: MAX_EVENTS_PER_REQUEST,
  maxBatchBytes: KEEPALIVE_MAX_BYTES,
  maxQueueEvents: 1000,
  maxQueueBytes: 512 * 1024,
  sessionTimeoutMs: 30 * 60 * 1000, // the decision engine's SESSION_GAP
  waitMs: 5000,
  baseBackoffMs: 1000,
  maxBackoffMs: 60000,
  visibleRatio: 0.5,
};
const MAX_WAIT_MS = 10000;
const MAX_PLAY_ATTEMPTS = 3;
const MAX_PLAY_RETRY_WAIT_MS = 10000;
const QUEUE_KEY = 'cartwise.queue';
const SESSION_KEY = 'cartwise.session';
const OPT_OUT_KEY = 'cartwise.optout';

function clamp(value, low, high, fallback) {
  const number = Number(value);
  return Number.isFinite(number) ? Math.min(high, Math.max(low, number)) : fallback;
}

function globalStorage(g) {
  try {
    return g.localStorage || null; // reading the property itself throws where storage is blocked
  } catch (_) {
    return null;
  }
}

// Everything the tracker touches outside itself; each may be injected, else taken from
// globalThis. Browser methods are called through their owner (an unbound window.fetch or
// navigator.sendBeacon throws "Illegal invocation").
function environment(env) {
  const g = globalThis;
  const pick = (name, fallback) => (name in env ? env[name] : fallback);
  const navigator = pick('navigator', g.navigator || null);
  return {
    fetch: pick('fetch', typeof g.fetch === 'function' ? (url, init) => g.fetch(url, init) : null),
    sendBeacon: pick('sendBeacon', navigator && typeof navigator.sendBeacon === 'function'
      ? (url, data) => navigator.sendBeacon(url, data)
      : null),
    storage: pick('storage', globalStorage(g)),
    now: pick('now', () => Date.now()),
    random: pick('random', Math.random),
    setTimeout: pick('setTimeout', (fn, ms) => g.setTimeout(fn, ms)),
    clearTimeout: pick('clearTimeout', (id) => g.clearTimeout(id)),
    document: pick('document', g.document || null),
    window: pick('window', g.window || null),
    location: pick('location', g.location || null),
    navigator,
    crypto: pick('crypto', g.crypto || null),
    Blob: pick('Blob', g.Blob || null),
    IntersectionObserver: pick('IntersectionObserver', g.IntersectionObserver || null),
    AbortController: pick('AbortController', g.AbortController || null),
  };
}

const isHttp = (url) => typeof url === 'string' && /^https?:\/\/[^\s]+$/i.test(url);

// The base URL of one service: its own override, else `endpoint` (the three services are
// separate deployments; one endpoint serves them all behind a load balancer, or locally).
function serviceUrl(config, name) {
  const url = config[name] != null ? config[name] : config.endpoint;
  return isHttp(url) ? url.replace(/\/+$/, '') : null;
}

// What makes the configuration unusable, or null. The key may be a publishable key (cwpk_,
// for web pages) or, in a retailer's back end, a secret one: the server tells them apart.
function configProblem(config) {
  if (!serviceUrl(config, 'eventsUrl')) {
    return 'endpoint (or eventsUrl) must be the http(s) URL of the cartwise API';
  }
  for (const name of ['endpoint', 'eventsUrl', 'experiencesUrl', 'playsUrl']) {
    if (config[name] != null && !isHttp(config[name])) return name + ' must be an http(s) URL';
  }
  if (typeof config.key !== 'string' || !config.key.trim() || /\s/.test(config.key)) {
    return 'key must be a cartwise API key (cwpk_... in a web page)';
  }
  if (typeof config.shopperId !== 'string' || !config.shopperId.trim()) {
    return "shopperId must be the retailer's customer identifier";
  }
  return null;
}

export function createTracker(config, injected) {
  const cfg = { ...DEFAULTS, ...(config || {}) };
  const env = environment(injected || {});
  const errorListeners = new Set();
  if (typeof cfg.onError === 'function') errorListeners.add(cfg.onError);

  function report(error) {
    for (const listener of errorListeners) {
      try {
        listener(error);
      } catch (_) {
        // never into the page
      }
    }
  }

  const limits = {
    flushIntervalMs: clamp(cfg.flushIntervalMs, 0, 60000, DEFAULTS.flushIntervalMs),
    maxBatchEvents: clamp(cfg.maxBatchEvents, 1, MAX_EVENTS_PER_REQUEST, MAX_EVENTS_PER_REQUEST),
    // Well below the server's MAX_REQUEST_BYTES; above 60 KB a batch cannot use keepalive.
    maxBatchBytes: clamp(cfg.maxBatchBytes, 2048, MAX_REQUEST_BYTES / 2, KEEPALIVE_MAX_BYTES),
    maxQueueEvents: clamp(cfg.maxQueueEvents, 1, 100000, DEFAULTS.maxQueueEvents),
    maxQueueBytes: clamp(cfg.maxQueueBytes, 4096, 4 * 1024 * 1024, DEFAULTS.maxQueueBytes),
    sessionTimeoutMs: clamp(cfg.sessionTimeoutMs, 1000, 24 * 3600 * 1000, DEFAULTS.sessionTimeoutMs),
    waitMs: Math.round(clamp(cfg.waitMs, 0, MAX_WAIT_MS, DEFAULTS.waitMs)),
    baseBackoffMs: clamp(cfg.baseBackoffMs, 1, 600000, DEFAULTS.baseBackoffMs),
    maxBackoffMs: clamp(cfg.maxBackoffMs, 1, 3600000, DEFAULTS.maxBackoffMs),
    visibleRatio: clamp(cfg.visibleRatio, 0, 1, DEFAULTS.visibleRatio),
  };

  const problem = configProblem(cfg);
  const eventsUrl = serviceUrl(cfg, 'eventsUrl') || '';
  const experiencesUrl = serviceUrl(cfg, 'experiencesUrl');
  const playsUrl = serviceUrl(cfg, 'playsUrl');
  const key = String(cfg.key || '');
  // A publishable key is public: it cannot send order events, and acting for a shopper
  // (experiences, plays) needs the signature the retailer's back end computed.
  const publishable = key.startsWith(PUBLISHABLE_KEY_PREFIX);
  const shopperId = typeof cfg.shopperId === 'string' ? cfg.shopperId : '';
  // An e-mail (or anything but a customer id) never leaves the browser, not even in a header.
  const shopperProblem = shopperRefusal(shopperId);
  const signature = typeof cfg.shopperSignature === 'string' ? cfg.shopperSignature : '';
  const store = safeStorage(env.storage);
  const queue = createQueue(store, QUEUE_KEY, { maxEvents: limits.maxQueueEvents, maxBytes: limits.maxQueueBytes });
  const session = createSession(store, SESSION_KEY, limits.sessionTimeoutMs, () => uuid4(env.crypto));
  let refused = 0;
  let signatureReported = false;

  // The headers of the calls made for one shopper (experiences, plays). The signature is the
  // hex HMAC-SHA256 the retailer's back end computed for this shopper; a secret key needs none.
  const shopperHeaders = () => {
    const headers = { 'X-Api-Key': key, 'X-Shopper-Id': shopperId };
    if (signature) headers['X-Shopper-Signature'] = signature;
    return headers;
  };
  const waiter = createExperienceWaiter({
    url: (experiencesUrl || '') + '/v1/experiences',
    headers: shopperHeaders,
    env,
    waitMs: limits.waitMs,
    report,
  });

  function delivered(events) {
    if (!waiter.listening()) return;
    if (!experiencesUrl || (publishable && !signature)) {
      if (!signatureReported) {
        report(experiencesUrl
          ? { code: 'missing_signature', message: 'onExperiences needs shopperSignature', source: 'experiences' }
          : { code: 'invalid_config', message: 'onExperiences needs endpoint or experiencesUrl', source: 'experiences' });
      }
      signatureReported = true;
      return;
    }
    // The experience_* events a rendering sends do not ask again: the page already shows
    // their decision, and asking would re-render what was just rendered.
    const latest = events.filter((event) => !event.type.startsWith('experience_')).pop();
    if (latest) waiter.waitFor(latest.event_id);
  }

  const sender = createSender({
    url: eventsUrl + '/v1/events',
    // A beacon cannot carry X-Api-Key: a publishable key goes in the query string (the
    // server accepts that for publishable keys only; a secret key never goes in a URL).
    beaconUrl: publishable ? eventsUrl + '/v1/events?key=' + encodeURIComponent(key) : null,
    key,
    queue,
    env,
    config: limits,
    report,
    delivered,
  });

  const optedOut = () => store.get(OPT_OUT_KEY) === '1';

  function refuse(error) {
    refused++;
    report(error);
    return { ok: false, error };
  }

  function track(type, payload) {
    if (problem) return { ok: false, error: { code: 'invalid_config', message: problem, source: 'track' } };
    if (optedOut()) return { ok: false, error: { code: 'opted_out', message: 'the shopper opted out', source: 'track' } };
    if (!EVENT_TYPES.includes(type)) {
      return refuse({ code: 'unknown_event_type', message: 'not an event type: ' + String(type), source: 'track' });
    }
    if (publishable && SECRET_KEY_TYPES.includes(type)) {
      // What the server answers for it, event by event: orders are confirmed by the
      // retailer's back end, with its secret key, never by a page.
      return refuse({
        code: 'secret_key_required',
        field: 'type',
        message: type + ' is sent by the retailer\'s back end with its secret key',
        type,
        source: 'track',
      });
    }
    let copy;
    try {
      copy = JSON.parse(JSON.stringify(payload === undefined ? {} : payload));
    } catch (error) {
      if (error instanceof RangeError) {
        // Too deep for the engine's stack: far beyond MAX_DEPTH.
        return refuse({ code: 'too_deep', field: '', message: 'the payload nests too deep', type, source: 'track' });
      }
      copy = null;
    }
    if (!copy || typeof copy !== 'object' || Array.isArray(copy)) {
      return refuse({ code: 'invalid_payload', message: 'a payload is a JSON object', type, source: 'track' });
    }
    const now = env.now();
    const event = {
      event_id: uuid4(env.crypto),
      type,
      shopper_id: shopperId,
      session_id: null,
      occurred_at: new Date(now).toISOString(),
      schema_version: SCHEMA_VERSION,
      payload: copy,
    };
    // The server's personal-data refusal, before anything is stored or sent. The error names
    // the field, never its value (an onError listener may log it somewhere).
    const why = refusal(event);
    if (why) return refuse({ ...why, type, source: 'track' });
    event.session_id = session.touch(shopperId, now);
    const text = JSON.stringify(event);
    const bytes = utf8Length(text);
    if (bytes > limits.maxBatchBytes - 16) {
      return refuse({ code: 'event_too_large', message: bytes + ' bytes: over one batch', type, source: 'track' });
    }
    const dropped = queue.push({ e: event, n: bytes });
    if (dropped.length) {
      report({
        code: 'queue_overflow',
        message: 'the outbound queue is full: the oldest events were dropped',
        dropped: dropped.length,
        event_ids: dropped.map((item) => item.e.event_id),
        source: 'queue',
      });
    }
    // While the page waits for experiences, an event that may change them goes at once (the
    // shopper is looking at the page: batching would add up to flushIntervalMs to the time
    // to the experience); otherwise events are batched.
    if (waiter.listening() && !type.startsWith('experience_')) sender.flush();
    else sender.queued();
    return { ok: true, event: JSON.parse(text) };
  }

  const exhibitor = createExhibitor({ env, track, report, ratio: limits.visibleRatio });

  const here = () => (env.location && typeof env.location.href === 'string' ? env.location.href : undefined);
  const withUrl = (payload) => ({ url: here(), ...(payload || {}) });

  function sleep(ms) {
    return new Promise((resolve) => env.setTimeout(resolve, ms));
  }

  // The game's calls: retried on network errors and 503 (a play is idempotent per token: the
  // same token always gets the same outcome). Resolve with the outcome, never reject.
  async function post(path, body) {
    let error = null;
    if (problem || !playsUrl) {
      error = { code: 'invalid_config', message: problem || 'the game needs endpoint or playsUrl', source: 'plays' };
    } else if (shopperProblem) {
      error = { ...shopperProblem, source: 'plays' };
    } else if (publishable && !signature) {
      error = { code: 'missing_signature', message: 'the game needs shopperSignature', source: 'plays' };
    }
    if (error) {
      report(error);
      return { ok: false, error };
    }
    for (let attempt = 1; ; attempt++) {
      let response;
      let answer;
      try {
        response = await env.fetch(playsUrl + path, {
          method: 'POST',
          headers: { ...shopperHeaders(), 'Content-Type': 'application/json' },
          body: JSON.stringify(body),
          credentials: 'omit',
        });
        answer = await readJson(response);
      } catch (error) {
        if (attempt < MAX_PLAY_ATTEMPTS) {
          await sleep(Math.floor(env.random() * limits.baseBackoffMs * 2 ** attempt));
          continue;
        }
        const failure = { code: 'network_error', message: String((error && error.message) || error), source: 'plays' };
        report(failure);
        return { ok: false, error: failure };
      }
      if (response.status >= 200 && response.status < 300) {
        return { ok: true, status: response.status, play: answer };
      }
      const wait = retryAfterMs(response, answer, env.now());
      if (response.status === 503 && attempt < MAX_PLAY_ATTEMPTS && (wait == null || wait <= MAX_PLAY_RETRY_WAIT_MS)) {
        await sleep(wait != null ? wait : Math.floor(env.random() * limits.baseBackoffMs * 2 ** attempt));
        continue;
      }
      const failure = httpError('plays', response, answer);
      report(failure);
      return { ok: false, status: response.status, error: failure };
    }
  }

  // Page life: flush by beacon on hide, resend beacons' events when shown again, send on
  // reconnection. visibilitychange is the last event a mobile browser reliably fires;
  // pagehide covers desktop navigations.
  const doc = env.document;
  const win = env.window;
  const onVisibility = () => {
    if (doc.visibilityState === 'hidden') sender.beacon();
    else if (doc.visibilityState === 'visible') sender.shown();
  };
  const onPageHide = () => sender.beacon();
  const onPageShow = (event) => {
    if (event && event.persisted) sender.shown(); // back from the back/forward cache
  };
  const onOnline = () => sender.flush();
  if (doc && typeof doc.addEventListener === 'function') doc.addEventListener('visibilitychange', onVisibility);
  if (win && typeof win.addEventListener === 'function') {
    win.addEventListener('pagehide', onPageHide);
    win.addEventListener('pageshow', onPageShow);
    win.addEventListener('online', onOnline);
  }

  if (problem) {
    sender.stop();
    report({ code: 'invalid_config', message: problem, source: 'init' });
  } else if (optedOut()) {
    sender.stop();
  } else {
    sender.start(); // what earlier pages left (beacons' events included) goes now
  }

  return {
    track,
    pageViewed(payload) {
      exhibitor.newPageView();
      return track('page_viewed', withUrl(payload));
    },
    linkClicked: (payload) => track('link_clicked', withUrl(payload)),
    searchPerformed: (payload) => track('search_performed', payload),
    productAddedToBasket: (payload) => track('product_added_to_basket', payload),
    productRemovedFromBasket: (payload) => track('product_removed_from_basket', payload),
    cartValidated: (payload) => track('cart_validated', payload),
    orderStatusChanged: (payload) => track('order_status_changed', payload),
    experienceDisplayed: (payload) => track('experience_displayed', payload),
    experienceClicked: (payload) => track('experience_clicked', payload),
    flush: () => sender.flush(),
    onExperiences: (callback) => waiter.listen(callback),
    // The experiences for an event the retailer's back end sent (a confirmed order): the
    // page got its event_id from its own back end; the answer reaches onExperiences.
    expect: (eventId) => {
      if (typeof eventId !== 'string' || !eventId) return false;
      if (!waiter.listening() || !experiencesUrl || (publishable && !signature)) return false;
      waiter.waitFor(eventId);
      return true;
    },
    onError(callback) {
      if (typeof callback !== 'function') return () => {};
      errorListeners.add(callback);
      return () => errorListeners.delete(callback);
    },
    render: (experience, element, options) => exhibitor.render(experience, element, options),
    observe: (element, experience, options) => exhibitor.observe(element, experience, options),
    play: (playToken) => post('/v1/plays', { play_token: playToken }),
    // The e-mail is the one personal datum that leaves the browser, and only here.
    claim: (playId, playToken, email) =>
      post('/v1/plays/' + encodeURIComponent(String(playId)) + '/claim', { play_token: playToken, email }),
    optOut() {
      store.set(OPT_OUT_KEY, '1');
      sender.stop();
      waiter.abort();
      queue.clear();
      session.clear();
    },
    optIn() {
      store.remove(OPT_OUT_KEY);
      if (!problem) sender.start();
    },
    optedOut,
    stats: () => ({
      ...sender.stats,
      queued: queue.items().length,
      dropped: queue.dropped(),
      refused,
      persistent: store.persistent(),
    }),
    destroy() {
      sender.stop();
      waiter.abort();
      if (doc && typeof doc.removeEventListener === 'function') doc.removeEventListener('visibilitychange', onVisibility);
      if (win && typeof win.removeEventListener === 'function') {
        win.removeEventListener('pagehide', onPageHide);
        win.removeEventListener('pageshow', onPageShow);
        win.removeEventListener('online', onOnline);
      }
    },
  };
}

// The page's tracker: cartwise.init(config) once, then the same calls as createTracker's.
// A call before init is refused with not_initialized (nothing is sent without a key).
const CALLS = [
  'track', 'pageViewed', 'linkClicked', 'searchPerformed', 'productAddedToBasket',
  'productRemovedFromBasket', 'cartValidated', 'orderStatusChanged', 'experienceDisplayed',
  'experienceClicked', 'flush', 'onExperiences', 'expect', 'onError', 'render', 'observe', 'play', 'claim',
  'optOut', 'optIn', 'optedOut', 'stats', 'destroy',
];

function createDefault() {
  let current = null;
  const cartwise = {
    VERSION,
    EVENT_TYPES,
    FORBIDDEN_FIELDS,
    createTracker,
    init(config, env) {
      if (current) current.destroy();
      current = createTracker(config, env);
      return current;
    },
  };
  const notInitialized = { ok: false, error: { code: 'not_initialized', message: 'call cartwise.init first' } };
  for (const name of CALLS) {
    cartwise[name] = (...args) => {
      if (current) return current[name](...args);
      if (name === 'flush' || name === 'play' || name === 'claim') return Promise.resolve(notInitialized);
      if (name === 'onExperiences' || name === 'onError' || name === 'observe') return () => {};
      return name === 'stats' || name === 'optedOut' || name === 'destroy' ? undefined : notInitialized;
    };
  }
  return cartwise;
}

export const cartwise = createDefault();
export { EVENT_TYPES, FORBIDDEN_FIELDS, SCHEMA_VERSION };
export default cartwise;
