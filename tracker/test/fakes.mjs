// Injected fakes for the tracker's tests: no real network, timers, storage or DOM.
// (Not a test file itself: it holds no test.)

export const KEY = 'cwpk_test_publishable';
export const EVENTS = 'https://events.test';
export const EXPERIENCES = 'https://experiences.test';
export const PLAYS = 'https://plays.test';

export function config(extra) {
  return {
    endpoint: 'https://api.test',
    eventsUrl: EVENTS,
    experiencesUrl: EXPERIENCES,
    playsUrl: PLAYS,
    key: KEY,
    shopperId: 'customer-42',
    shopperSignature: 'ab'.repeat(32),
    ...(extra || {}),
  };
}

// A fetch Response, as far as the tracker reads one.
export function reply(status, body, headers) {
  const h = new Map(Object.entries(headers || {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
  return {
    status,
    ok: status >= 200 && status < 300,
    headers: { get: (name) => (h.has(name.toLowerCase()) ? h.get(name.toLowerCase()) : null) },
    json: async () => {
      if (body === undefined) throw new SyntaxError('no body');
      return JSON.parse(JSON.stringify(body));
    },
  };
}

// What the ingest API answers when it accepts every event of a request.
export function acceptAll(init) {
  const events = JSON.parse(init.body).events;
  return reply(202, { accepted: events.length, duplicate_count: 0, rejected_count: 0, duplicates: [], rejected: [] });
}

export function memoryStorage() {
  const map = new Map();
  return {
    map,
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => map.set(k, String(v)),
    removeItem: (k) => map.delete(k),
  };
}

// Settle every pending promise (fetch answers, their .json(), the sender's loop).
export async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

class FakeEventTarget {
  constructor() {
    this.listeners = new Map();
  }
  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
  }
  removeEventListener(type, fn) {
    if (this.listeners.has(type)) this.listeners.get(type).delete(fn);
  }
  dispatch(type, event) {
    for (const fn of [...(this.listeners.get(type) || [])]) fn(event || { type });
  }
}

// Just enough DOM: elements whose text goes in through textContent; innerHTML throws, so a
// test fails if the tracker ever used it.
export class FakeElement extends FakeEventTarget {
  constructor(tag, doc) {
    super();
    this.tagName = tag.toUpperCase();
    this.ownerDocument = doc;
    this.children = [];
    this.attributes = {};
    this.text = '';
    this.isConnected = true;
  }
  set innerHTML(_) {
    throw new Error('innerHTML used');
  }
  get innerHTML() {
    throw new Error('innerHTML used');
  }
  insertAdjacentHTML() {
    throw new Error('insertAdjacentHTML used');
  }
  set textContent(value) {
    this.children = [];
    this.text = String(value);
  }
  get textContent() {
    return this.text + this.children.map((c) => c.textContent).join('');
  }
  setAttribute(name, value) {
    this.attributes[name] = String(value);
  }
  appendChild(child) {
    this.children.push(child);
    return child;
  }
  click() {
    this.dispatch('click', { type: 'click', target: this });
  }
}

export class FakeDocument extends FakeEventTarget {
  constructor() {
    super();
    this.visibilityState = 'visible';
  }
  createElement(tag) {
    return new FakeElement(tag, this);
  }
  hide() {
    this.visibilityState = 'hidden';
    this.dispatch('visibilitychange');
  }
  show() {
    this.visibilityState = 'visible';
    this.dispatch('visibilitychange');
  }
}

// The whole environment: clock, timers, random, fetch, sendBeacon, storage, DOM.
export function fakeEnv(options) {
  const opts = options || {};
  const env = {
    time: opts.time || Date.UTC(2025, 0, 15, 12, 0, 0),
    timers: [],
    nextTimer: 1,
    requests: [],
    beacons: [],
    // By default: the ingest API accepts everything; any other call finds nothing.
    handler: opts.handler || ((url, init) => (url.includes('/v1/events') ? acceptAll(init) : reply(404, { error: { code: 'not_found', message: 'x' } }))),
    beaconResult: true,
    randomValue: opts.random != null ? opts.random : 0.5,
    observers: [],
    storage: opts.storage || memoryStorage(),
    document: new FakeDocument(),
    window: new FakeEventTarget(),
  };
  const IO = class {
    constructor(callback, options) {
      this.callback = callback;
      this.options = options;
      this.elements = [];
      this.disconnected = false;
      env.observers.push(this);
    }
    observe(element) {
      this.elements.push(element);
    }
    disconnect() {
      this.disconnected = true;
    }
    // Tell the observer how much of its element is in the viewport.
    show(ratio) {
      if (this.disconnected) return;
      this.callback(this.elements.map((target) => ({ target, isIntersecting: ratio > 0, intersectionRatio: ratio })));
    }
  };
  env.injected = {
    fetch: async (url, init) => {
      // A runaway sender (resending in a loop) stalls here instead of hanging the test run:
      // the test then fails on what it counts.
      if (env.requests.length >= 5000) return new Promise(() => {});
      const request = { url, init, body: init.body ? JSON.parse(init.body) : undefined };
      env.requests.push(request);
      return env.handler(url, init, request);
    },
    sendBeacon: (url, data) => {
      env.beacons.push({ url, data });
      return env.beaconResult;
    },
    storage: env.storage,
    now: () => env.time,
    random: () => (typeof env.randomValue === 'function' ? env.randomValue() : env.randomValue),
    setTimeout: (fn, ms) => {
      const id = env.nextTimer++;
      env.timers.push({ id, at: env.time + Math.max(0, ms || 0), fn });
      return id;
    },
    clearTimeout: (id) => {
      env.timers = env.timers.filter((t) => t.id !== id);
    },
    document: env.document,
    window: env.window,
    location: { href: 'https://shop.test/basket' },
    navigator: { onLine: true },
    crypto: globalThis.crypto,
    Blob: globalThis.Blob,
    IntersectionObserver: IO,
    AbortController: globalThis.AbortController,
    ...(opts.injected || {}),
  };
  // Move the clock forward, running the timers that fall due, in order, settling between.
  env.advance = async (ms) => {
    const end = env.time + ms;
    await settle();
    for (;;) {
      env.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const due = env.timers[0];
      if (!due || due.at > end) break;
      env.timers.shift();
      env.time = Math.max(env.time, due.at);
      due.fn();
      await settle();
    }
    env.time = end;
    await settle();
  };
  // The earliest pending timer's delay from now (null: none).
  env.nextDelay = () => {
    if (!env.timers.length) return null;
    return Math.min(...env.timers.map((t) => t.at)) - env.time;
  };
  env.eventRequests = () => env.requests.filter((r) => r.url.startsWith(EVENTS));
  env.sentIds = () => env.eventRequests().flatMap((r) => r.body.events.map((e) => e.event_id));
  return env;
}

export const basketLine = (i) => ({ product_id: 'sku-' + i, quantity: 1, unit_price: '9.99' });
