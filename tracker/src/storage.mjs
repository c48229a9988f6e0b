// Persistence: localStorage when the page may use it, memory otherwise.
//
// localStorage can be missing, can throw on access (cookies blocked, sandboxed frames) and
// can throw on write (quota, Safari private mode). Every call is guarded: after the first
// failure the tracker keeps going on a copy in memory for the rest of the page's life.
export function safeStorage(backend) {
  const memory = new Map();
  let usable = Boolean(backend);
  return {
    get(key) {
      if (usable) {
        try {
          const value = backend.getItem(key);
          memory.set(key, value);
          return value;
        } catch (_) {
          usable = false;
        }
      }
      return memory.has(key) ? memory.get(key) : null;
    },
    set(key, value) {
      memory.set(key, value);
      if (usable) {
        try {
          backend.setItem(key, value);
        } catch (_) {
          usable = false;
        }
      }
    },
    remove(key) {
      memory.delete(key);
      if (usable) {
        try {
          backend.removeItem(key);
        } catch (_) {
          usable = false;
        }
      }
    },
    persistent: () => usable,
  };
}

function parse(raw) {
  try {
    const value = JSON.parse(raw);
    return value && typeof value === 'object' ? value : null;
  } catch (_) {
    return null;
  }
}

// The outbound queue: events not yet acknowledged by the server, oldest first, bounded by
// count and bytes (full: the oldest is dropped and counted). Each item is
// { e: event, n: its JSON bytes, b: the beacon epoch that sent it, if a beacon did }.
//
// The stored copy is the truth: every change re-reads it, so two tabs of one shop share one
// queue instead of overwriting each other's (an event both tabs send is answered to the
// second as a duplicate, which is delivered all the same).
export function createQueue(store, key, limits) {
  let lastRaw;
  let cached;

  function load() {
    const raw = store.get(key);
    if (raw !== lastRaw || !cached) {
      const value = raw ? parse(raw) : null;
      cached = {
        items: value && Array.isArray(value.items) ? value.items.filter((i) => i && i.e) : [],
        dropped: value && Number(value.dropped) > 0 ? Number(value.dropped) : 0,
      };
      lastRaw = raw;
    }
    return cached;
  }

  function save(state) {
    cached = state;
    lastRaw = JSON.stringify(state);
    store.set(key, lastRaw);
  }

  function bytes(items) {
    return items.reduce((sum, item) => sum + item.n, 0);
  }

  return {
    items: () => load().items,
    dropped: () => load().dropped,
    // Adds an item; returns the items dropped to stay within the bounds.
    push(item) {
      const state = load();
      const items = state.items.concat([item]);
      const dropped = [];
      let total = bytes(items);
      while (items.length > 1 && (items.length > limits.maxEvents || total > limits.maxBytes)) {
        const oldest = items.shift();
        total -= oldest.n;
        dropped.push(oldest);
      }
      save({ items, dropped: state.dropped + dropped.length });
      return dropped;
    },
    remove(ids) {
      const state = load();
      const items = state.items.filter((item) => !ids.has(item.e.event_id));
      if (items.length !== state.items.length) save({ items, dropped: state.dropped });
    },
    markBeacon(ids, epoch) {
      const state = load();
      save({
        items: state.items.map((item) => (ids.has(item.e.event_id) ? { e: item.e, n: item.n, b: epoch } : item)),
        dropped: state.dropped,
      });
    },
    clear() {
      cached = { items: [], dropped: 0 };
      lastRaw = undefined;
      store.remove(key);
    },
  };
}

// The session: a new id after `timeoutMs` of silence (as the decision engine counts
// sessions: 30 minutes by default), or when the shopper changes.
export function createSession(store, key, timeoutMs, newId) {
  return {
    touch(shopperId, now) {
      const current = parse(store.get(key));
      const alive = current && typeof current.id === 'string' && current.shopper === shopperId &&
        now - Number(current.last) <= timeoutMs;
      const id = alive ? current.id : newId();
      store.set(key, JSON.stringify({ id, shopper: shopperId, last: now }));
      return id;
    },
    clear() {
      store.remove(key);
    },
  };
}
