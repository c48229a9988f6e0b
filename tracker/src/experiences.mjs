// Experiences: waiting for the decision of the latest event, and showing it safely.

import { readJson, httpError } from './http.mjs';
import { IDENTIFIER } from './contract.mjs';

function safeCall(fn, ...args) {
  try {
    fn(...args);
  } catch (_) {
    // a listener's fault never reaches the tracker or the page
  }
}

// GET /v1/experiences?after=<event_id>&wait_ms=<n> for the latest accepted event. Only the
// latest event's decision matters: a newer event aborts the older wait, and an answer that
// arrives for an older wait anyway is ignored.
export function createExperienceWaiter({ url, headers, env, waitMs, report }) {
  const listeners = new Set();
  let controller = null;
  let generation = 0;

  function abort() {
    generation++;
    if (controller) controller.abort();
    controller = null;
  }

  async function wait(eventId, mine, signal) {
    const target = url + '?after=' + encodeURIComponent(eventId) + '&wait_ms=' + waitMs;
    for (let tries = 0; tries < 2; tries++) { // a 204 (nothing within the wait) is asked once more
      let response;
      let body;
      try {
        response = await env.fetch(target, { method: 'GET', headers: headers(), signal, credentials: 'omit' });
        if (mine !== generation) return;
        if (response.status === 204) continue;
        body = await readJson(response);
      } catch (error) {
        if (mine !== generation || (error && error.name === 'AbortError')) return;
        report({ code: 'network_error', message: String((error && error.message) || error), source: 'experiences' });
        return;
      }
      if (mine !== generation) return;
      if (response.status >= 200 && response.status < 300 && body && typeof body === 'object') {
        for (const listener of listeners) safeCall(listener, body);
      } else {
        report(httpError('experiences', response, body));
      }
      return;
    }
  }

  return {
    listen(callback) {
      if (typeof callback !== 'function') return () => {};
      listeners.add(callback);
      return () => listeners.delete(callback);
    },
    listening: () => listeners.size > 0,
    waitFor(eventId) {
      abort();
      controller = typeof env.AbortController === 'function' ? new env.AbortController() : null;
      wait(eventId, generation, controller ? controller.signal : undefined);
    },
    abort,
  };
}

// Only absolute http(s) URLs become an image source (never javascript:, data:, ...).
export function isHttpUrl(value) {
  return typeof value === 'string' && /^https?:\/\/[^\s]+$/i.test(value.trim());
}

// A field of an experience: at its top level, or in its `details` (the decision engine's form).
function field(experience, name) {
  if (typeof experience[name] === 'string') return experience[name];
  const details = experience.details;
  return details && typeof details === 'object' && typeof details[name] === 'string' ? details[name] : null;
}

// Reports experience_displayed once per experience per page view, when it is seen: at least
// `ratio` of it in the viewport (IntersectionObserver) while the page is visible; without
// IntersectionObserver, as soon as it is in the document. experience_clicked on each click.
export function createExhibitor({ env, track, report, ratio }) {
  let displayed = new Set();

  function pageVisible() {
    const state = env.document && env.document.visibilityState;
    return !state || state === 'visible';
  }

  function observe(element, experience, options) {
    const opts = options || {};
    if (!experience || !IDENTIFIER.test(String(experience.experience_id))) {
      report({ code: 'invalid_experience', message: 'an experience needs an experience_id', source: 'render' });
      return () => {};
    }
    const payload = { experience_id: experience.experience_id };
    if (typeof experience.campaign_id === 'string') payload.campaign_id = experience.campaign_id;
    const doc = env.document;
    let io = null;
    let inView = false;
    let done = false;

    const onClick = (event) => {
      track('experience_clicked', { ...payload });
      if (typeof opts.onClick === 'function') safeCall(opts.onClick, experience, event);
    };
    const unwatch = () => {
      if (io) io.disconnect();
      io = null;
      if (doc) doc.removeEventListener('visibilitychange', check);
    };
    function check() {
      if (done || !inView || !pageVisible()) return;
      done = true;
      unwatch();
      if (displayed.has(payload.experience_id)) return;
      displayed.add(payload.experience_id);
      track('experience_displayed', { ...payload });
    }

    element.addEventListener('click', onClick);
    if (doc) doc.addEventListener('visibilitychange', check);
    if (typeof env.IntersectionObserver === 'function') {
      io = new env.IntersectionObserver((entries) => {
        for (const entry of entries) inView = entry.isIntersecting && entry.intersectionRatio >= ratio - 0.001;
        check();
      }, { threshold: ratio });
      io.observe(element);
    } else {
      inView = element.isConnected !== false;
      check();
    }
    return () => {
      done = true;
      unwatch();
      element.removeEventListener('click', onClick);
    };
  }

  // A minimal rendering: image (http(s) only), title, text. Server data only ever goes in
  // through textContent and img.src, never innerHTML.
  function render(experience, element, options) {
    const opts = options || {};
    if (!experience || !element) {
      report({ code: 'invalid_experience', message: 'render(experience, element) needs both', source: 'render' });
      return null;
    }
    const doc = element.ownerDocument || env.document;
    const node = doc.createElement('div');
    node.className = opts.className || 'cartwise-experience';
    node.setAttribute('data-experience-id', String(experience.experience_id));
    if (experience.type != null) node.setAttribute('data-experience-type', String(experience.type));
    const title = field(experience, 'title');
    const image = field(experience, 'image_url');
    if (isHttpUrl(image)) {
      const img = doc.createElement('img');
      img.src = image.trim();
      img.alt = title || '';
      node.appendChild(img);
    }
    if (title) {
      const heading = doc.createElement('strong');
      heading.textContent = title;
      node.appendChild(heading);
    }
    const text = field(experience, 'text');
    if (text) {
      const paragraph = doc.createElement('p');
      paragraph.textContent = text;
      node.appendChild(paragraph);
    }
    if (opts.replace !== false) element.textContent = '';
    element.appendChild(node);
    observe(node, experience, opts);
    return node;
  }

  return {
    observe,
    render,
    newPageView() {
      displayed = new Set();
    },
  };
}
