// The demo shop's page: the catalogue, a basket, a checkout, and what cartwise shows.
//
// Everything the servers send is put in the page with textContent (never innerHTML); the
// experiences' markup is the widget's (widget.js: window.cartwiseWidget).
// window.shop exposes what a test or a benchmark reads: each experience's time from the
// track() call that led to it to its rendering (performance.now()), the tracker's errors,
// the order and the play.

const $ = (id) => document.getElementById(id);

function node(tag, options, text) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(options || {})) {
    if (name === 'className') element.className = value;
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value);
  }
  if (text != null) element.textContent = String(text);
  return element;
}

const euros = (value) => Number(value).toFixed(2);

const shop = { timings: [], errors: [], order: null, play: null, claimed: false, answers: 0 };
window.shop = shop;

const state = {
  session: null,
  products: [],
  byId: new Map(),
  basket: new Map(), // product_id -> quantity
  shelf: null,
  query: '',
};
const trackedAt = new Map(); // event_id -> performance.now() of its track() (or checkout click)
const timed = new Set();
let observers = [];
let invitation = null; // the play token shown

function cw() {
  return window.cartwise;
}

function tracked(call, payload) {
  const started = performance.now();
  const result = cw()[call](payload);
  if (result && result.ok) {
    trackedAt.set(result.event.event_id, started);
    performance.mark('cartwise:track:' + result.event.event_id);
  }
  return result;
}

function timing(experience, eventId) {
  const started = trackedAt.get(eventId);
  const key = experience.experience_id + '/' + eventId;
  if (started === undefined || timed.has(key)) return;
  timed.add(key);
  performance.mark('cartwise:rendered:' + key);
  shop.timings.push({
    experience_id: experience.experience_id,
    type: experience.type,
    event_id: eventId,
    ms: Math.round((performance.now() - started) * 10) / 10,
  });
}

async function getJson(url) {
  const response = await fetch(url, { credentials: 'same-origin' });
  if (!response.ok) throw new Error(url + ': HTTP ' + response.status);
  return response.json();
}

function loadTracker(tracker) {
  if (window.cartwise) return Promise.resolve();
  if (tracker.module) return import(tracker.src); // the modules set window.cartwise too
  return new Promise((resolve, reject) => {
    const script = node('script', { src: tracker.src });
    script.onload = resolve;
    script.onerror = () => reject(new Error('the tracker did not load'));
    document.head.appendChild(script);
  });
}

// --- the catalogue --------------------------------------------------------------------

function visibleProducts() {
  if (state.query) {
    const words = state.query.toLowerCase().split(/\s+/).filter(Boolean);
    return state.products.filter((p) => {
      const text = (p.name + ' ' + (p.category || '')).toLowerCase();
      return words.every((w) => text.includes(w));
    });
  }
  return state.shelf ? state.products.filter((p) => p.category === state.shelf) : state.products;
}

function renderShelves() {
  const nav = $('shelves');
  nav.textContent = '';
  const shelves = [null, ...new Set(state.products.map((p) => p.category).filter(Boolean))];
  for (const shelf of shelves) {
    const button = node('button', {
      type: 'button',
      'aria-pressed': String(!state.query && state.shelf === shelf),
      dataset: { shelf: shelf || '' },
    }, shelf ? shelf.toLowerCase() : 'all products');
    button.addEventListener('click', () => browse(shelf));
    nav.appendChild(button);
  }
}

function productCard(product) {
  const card = node('article', { className: 'product', dataset: { productId: product.product_id } });
  card.appendChild(node('span', { className: 'name' }, product.name));
  card.appendChild(node('span', { className: 'category' }, (product.category || '').toLowerCase()));
  card.appendChild(node('span', { className: 'price' }, euros(product.unit_price) + ' €'));
  const add = node('button', { type: 'button', className: 'add', dataset: { add: product.product_id } }, 'Add to basket');
  add.addEventListener('click', () => addToBasket(product.product_id));
  card.appendChild(add);
  return card;
}

function renderProducts() {
  const list = $('products');
  list.textContent = '';
  const shown = visibleProducts();
  $('listing-title').textContent = state.query
    ? shown.length + ' result(s) for “' + state.query + '”'
    : state.shelf ? state.shelf.toLowerCase() : 'All products';
  for (const product of shown) list.appendChild(productCard(product));
}

function browse(shelf) {
  state.shelf = shelf;
  state.query = '';
  $('search').value = '';
  tracked('pageViewed', shelf ? { page_type: 'category', category: shelf } : { page_type: 'home' });
  renderShelves();
  renderProducts();
}

function search(query) {
  state.query = query.trim();
  if (!state.query) return browse(null);
  const results = visibleProducts();
  tracked('searchPerformed', { query: state.query.slice(0, 256), result_count: results.length });
  cw().flush();
  renderShelves();
  renderProducts();
}

// --- the basket -----------------------------------------------------------------------

function basketTotal() {
  let total = 0;
  for (const [id, quantity] of state.basket) total += Number(state.byId.get(id).unit_price) * quantity;
  return total;
}

function renderBasket() {
  const list = $('basket-lines');
  list.textContent = '';
  for (const [id, quantity] of state.basket) {
    const product = state.byId.get(id);
    const line = node('li', { dataset: { productId: id, quantity: String(quantity) } });
    line.appendChild(node('span', {}, quantity + ' × ' + product.name));
    const less = node('button', { type: 'button', 'aria-label': 'Remove one', dataset: { remove: id } }, '−');
    less.addEventListener('click', () => removeFromBasket(id));
    line.appendChild(less);
    list.appendChild(line);
  }
  $('basket-total').textContent = euros(basketTotal());
  $('checkout').disabled = state.basket.size === 0;
}

function linePayload(product) {
  const payload = { product_id: product.product_id, quantity: 1, unit_price: String(product.unit_price) };
  if (product.brand) payload.brand = product.brand;
  if (product.category) payload.category = product.category;
  return payload;
}

function addToBasket(id) {
  const product = state.byId.get(id);
  if (!product) return;
  state.basket.set(id, (state.basket.get(id) || 0) + 1);
  renderBasket();
  tracked('productAddedToBasket', linePayload(product));
  cw().flush(); // a basket change is what the shopper's experiences answer: no batching delay
}

function removeFromBasket(id) {
  const product = state.byId.get(id);
  const quantity = state.basket.get(id) || 0;
  if (!product || !quantity) return;
  if (quantity > 1) state.basket.set(id, quantity - 1);
  else state.basket.delete(id);
  renderBasket();
  const payload = linePayload(product);
  delete payload.brand;
  delete payload.category;
  tracked('productRemovedFromBasket', payload);
  cw().flush();
}

// --- experiences ----------------------------------------------------------------------

// The widget (widget.js, loaded before this script) builds each experience's node; the
// page names the products and attaches its handlers to the node's buttons.
const lookup = {
  nameOf(id) {
    const product = state.byId.get(String(id));
    return product ? product.name : 'product ' + id;
  },
  product: (id) => state.byId.get(String(id)) || null,
};

function experienceNode(experience) {
  const box = window.cartwiseWidget.experienceNode(experience, lookup);
  for (const add of box.querySelectorAll('button[data-add]')) {
    add.addEventListener('click', () => addToBasket(add.dataset.add));
  }
  return box;
}

function show(answer) {
  if (!answer || !Array.isArray(answer.experiences)) return;
  shop.answers++;
  for (const stop of observers) stop();
  observers = [];
  const area = $('experiences');
  area.textContent = '';
  for (const experience of answer.experiences) {
    if (experience.type === 'gamified_promotion') {
      showInvitation(experience, answer.event_id);
      continue;
    }
    const box = experienceNode(experience);
    area.appendChild(box);
    observers.push(cw().observe(box, experience)); // experience_displayed / _clicked
    timing(experience, answer.event_id);
  }
}

// --- the game -------------------------------------------------------------------------

function showInvitation(experience, eventId) {
  const d = experience.details || {};
  if (!d.play_token || invitation === d.play_token) return;
  invitation = d.play_token;
  const area = $('game');
  area.textContent = '';
  const box = window.cartwiseWidget.invitationNode(experience);
  box.id = 'invitation';
  const button = box.querySelector('button[data-play]');
  button.id = 'play';
  button.addEventListener('click', () => play(d.play_token, box, button));
  area.appendChild(box);
  cw().observe(box, experience);
  timing(experience, eventId);
}

async function play(token, box, button) {
  button.disabled = true;
  const result = await cw().play(token);
  const outcome = node('p', { id: 'outcome' });
  if (!result.ok) {
    outcome.textContent = 'The game is unavailable (' + result.error.code + ')';
    button.disabled = false;
  } else {
    shop.play = result.play;
    outcome.dataset.outcome = result.play.outcome;
    outcome.dataset.playId = result.play.play_id;
    if (result.play.outcome === 'won') {
      outcome.className = 'won';
      outcome.textContent = 'You won ' + euros(result.play.prize_value) + ' €!';
      box.appendChild(outcome);
      box.appendChild(claimForm(result.play.play_id, token));
      return;
    }
    outcome.textContent = 'Not a winner this time. Thank you for playing!';
  }
  box.appendChild(outcome);
}

function claimForm(playId, token) {
  const form = node('form', { id: 'claim-form' });
  const email = node('input', { id: 'email', type: 'email', required: 'required', placeholder: 'Your e-mail address', autocomplete: 'email' });
  const submit = node('button', { id: 'claim', type: 'submit' }, 'Claim my prize');
  const said = node('p', { id: 'claim-result' });
  form.append(email, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    // The e-mail goes to the rewards API only (the tracker's claim), never in an event.
    const result = await cw().claim(playId, token, email.value.trim());
    if (result.ok) {
      shop.claimed = true;
      said.dataset.claimed = 'true';
      said.textContent = 'Claimed: your prize will be sent to the address you gave.';
      email.value = '';
      form.replaceWith(said);
    } else {
      said.textContent = 'Not claimed (' + result.error.code + ')';
      submit.disabled = false;
      form.after(said);
    }
  });
  return form;
}

// --- the order ------------------------------------------------------------------------

// The back end confirms the order (cart_validated, with the retailer's secret key): the
// tracker did not send that event. Without the tracker's expect(), the page waits for its
// decision itself, with the tracker's three headers.
async function waitForDecision(eventId) {
  const s = state.session;
  const url = s.experiencesUrl.replace(/\/+$/, '') + '/v1/experiences?after=' + encodeURIComponent(eventId) + '&wait_ms=5000';
  const headers = { 'X-Api-Key': s.key, 'X-Shopper-Id': s.shopper_id, 'X-Shopper-Signature': s.shopper_signature };
  for (let tries = 0; tries < 2; tries++) {
    const response = await fetch(url, { headers, credentials: 'omit' });
    if (response.status === 204) continue;
    const body = await response.json().catch(() => null);
    if (response.ok) return body;
    shop.errors.push({ code: (body && body.error && body.error.code) || 'http_' + response.status, source: 'order' });
    return null;
  }
  return null;
}

async function checkout() {
  const button = $('checkout');
  button.disabled = true;
  const said = $('order');
  await cw().flush(); // the shopper's last events first: the order is decided after them
  const started = performance.now();
  const lines = [...state.basket].map(([product_id, quantity]) => ({ product_id, quantity }));
  let body = null;
  let response;
  try {
    response = await fetch('/api/checkout', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ lines }),
    });
    body = await response.json().catch(() => null);
  } catch (error) {
    response = null;
  }
  if (!response || !response.ok || !body) {
    const code = (body && body.error && body.error.code) || 'unreachable';
    said.textContent = 'The order was not confirmed (' + code + ')';
    said.dataset.refused = code;
    button.disabled = false;
    return;
  }
  trackedAt.set(body.event_id, started);
  shop.order = body;
  said.textContent = 'Order ' + body.order_id + ' confirmed: ' + euros(body.total) + ' €. Thank you!';
  said.dataset.orderId = body.order_id;
  state.basket.clear();
  renderBasket();
  // The tracker's expect(event_id) brings the decision to onExperiences; a tracker without
  // it: the page asks itself.
  if (typeof cw().expect === 'function' && cw().expect(body.event_id)) return;
  const answer = await waitForDecision(body.event_id);
  if (answer) show(answer);
}

// --- start ----------------------------------------------------------------------------

async function boot() {
  const [session, products] = await Promise.all([
    getJson('/api/session' + location.search),
    getJson('/api/products'),
  ]);
  // The sign-in parameter is not kept in the URL (nor in page_viewed's url).
  if (location.search) history.replaceState(null, '', location.pathname);
  state.session = session;
  state.products = products;
  state.byId = new Map(products.map((p) => [p.product_id, p]));
  await loadTracker(session.tracker);
  cw().init({
    eventsUrl: session.eventsUrl,
    experiencesUrl: session.experiencesUrl,
    playsUrl: session.playsUrl,
    key: session.key,
    shopperId: session.shopper_id,
    shopperSignature: session.shopper_signature,
    onError: (error) => shop.errors.push({ code: error.code, source: error.source, status: error.status }),
  });
  cw().onExperiences(show);
  $('who').textContent = 'Signed in as ' + session.shopper_id;
  $('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    search($('search').value);
  });
  $('checkout').addEventListener('click', checkout);
  renderShelves();
  renderProducts();
  renderBasket();
  tracked('pageViewed', { page_type: 'home' });
  $('status').textContent = 'Ready';
  document.body.dataset.ready = 'true';
}

boot().catch((error) => {
  $('status').textContent = 'The shop could not start: ' + error.message;
  document.body.dataset.ready = 'error';
});
