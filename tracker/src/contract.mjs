// The event contract as the browser sees it: a mirror of shared/contract/events.py
// (test/contract.test.mjs reads that file and fails if anything here drifts from it).

export const SCHEMA_VERSION = 1;
export const MAX_EVENTS_PER_REQUEST = 500;
export const MAX_REQUEST_BYTES = 1024 * 1024;

export const EVENT_TYPES = [
  'page_viewed',
  'link_clicked',
  'search_performed',
  'product_added_to_basket',
  'product_removed_from_basket',
  'cart_validated',
  'order_status_changed',
  'experience_displayed',
  'experience_clicked',
];

export const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$/;
export const MAX_EMAIL_LENGTH = 254; // RFC 5321's longest forward path, less its angle brackets
export const MAX_DEPTH = 16; // nesting of objects and arrays in one event

// Event types a publishable key (cwpk_) may not send: orders are confirmed by the
// retailer's back end with its secret key. The server refuses them one by one with
// secret_key_required; the tracker refuses them before queueing.
export const SECRET_KEY_TYPES = ['cart_validated', 'order_status_changed'];
export const PUBLISHABLE_KEY_PREFIX = 'cwpk_';

// Python's str.isspace() characters (JavaScript's \s differs: it has U+FEFF, lacks U+001C-1F and U+0085).
const SPACE = /[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

// The server's looks_like_email, in time linear in the text (no backtracking pattern):
// at most 254 characters, no whitespace, exactly one "@" with something before it, and a
// "." in the domain with something before and after it.
export function looksLikeEmail(text) {
  if (typeof text !== 'string' || text.length > 2 * MAX_EMAIL_LENGTH) return false;
  // Python counts code points, JavaScript UTF-16 units: count as the server does.
  let points = 0;
  for (const _ of text) points++;
  if (points > MAX_EMAIL_LENGTH || SPACE.test(text)) return false;
  const at = text.indexOf('@');
  if (at <= 0 || text.indexOf('@', at + 1) !== -1) return false;
  const domain = text.slice(at + 1);
  return domain.slice(1, -1).includes('.');
}

// The server's nests_deeper_than: whether objects and arrays nest more than `limit` deep
// (the event itself is depth 1). Iterative: no recursion for a hostile depth to exhaust.
export function nestsDeeperThan(value, limit) {
  const pending = [[value, 1]];
  while (pending.length) {
    const [item, depth] = pending.pop();
    if (!item || typeof item !== 'object') continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) pending.push([child, depth + 1]);
  }
  return false;
}

// Field names refused anywhere in an event, whatever their nesting (lower-cased, with
// every non-letter removed before comparison): identity and socio-demographic data.
export const FORBIDDEN_FIELDS = [
  'name', 'firstname', 'lastname', 'fullname', 'surname', 'givenname', 'familyname',
  'email', 'emailaddress', 'mail', 'phone', 'phonenumber', 'mobile', 'telephone',
  'address', 'streetaddress', 'street', 'postcode', 'postalcode', 'zipcode', 'zip', 'city',
  'birthdate', 'dateofbirth', 'dob', 'birthday', 'age', 'agerange', 'gender', 'sex',
  'ethnicity', 'ethnicorigin', 'race', 'religion', 'nationality', 'maritalstatus',
  'income', 'incomerange', 'householdsize', 'children', 'kidcount', 'homeowner',
  'ipaddress', 'ip', 'ssn', 'passport',
];
const forbidden = new Set(FORBIDDEN_FIELDS);

export function isPersonalField(key) {
  return forbidden.has(String(key).toLowerCase().replace(/[^a-z]/g, ''));
}

// Every path to a forbidden key, written as the server writes them ("payload.lines[0].name").
export function forbiddenPaths(value, path) {
  const found = [];
  if (Array.isArray(value)) {
    value.forEach((child, index) => found.push(...forbiddenPaths(child, path + '[' + index + ']')));
  } else if (value && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      const childPath = path ? path + '.' + key : key;
      if (isPersonalField(key)) found.push(childPath);
      found.push(...forbiddenPaths(value[key], childPath));
    }
  }
  return found;
}

// The reason the server would refuse this event for its depth, personal data or a malformed
// shopper id, or null, checked in the server's order. Run before anything is queued: such an
// event never leaves the browser.
export function refusal(event) {
  if (nestsDeeperThan(event, MAX_DEPTH)) {
    return {
      code: 'too_deep',
      field: '',
      message: 'objects and arrays nest at most ' + MAX_DEPTH + ' deep in an event',
    };
  }
  const paths = forbiddenPaths(event.payload, 'payload');
  if (paths.length) {
    return {
      code: 'personal_data_refused',
      field: paths[0],
      fields: paths,
      message: 'identity and socio-demographic data are never accepted',
    };
  }
  return shopperRefusal(event.shopper_id);
}

// Why this shopper id may not leave the browser (in an event or an X-Shopper-Id header), or
// null: an e-mail address is personal data; anything else must be a customer identifier.
export function shopperRefusal(shopperId) {
  const shopper = typeof shopperId === 'string' ? shopperId.trim() : '';
  if (looksLikeEmail(shopper)) {
    return {
      code: 'personal_data_refused',
      field: 'shopper_id',
      message: "must be the retailer's customer identifier, not an e-mail",
    };
  }
  if (!IDENTIFIER.test(shopper)) {
    return { code: 'invalid_shopper_id', field: 'shopper_id', message: 'not a customer identifier' };
  }
  return null;
}

// A UUID v4: crypto.randomUUID where the browser has it (secure contexts only), else built
// from crypto.getRandomValues (everywhere), else Math.random as a last resort (never throws).
export function uuid4(crypto) {
  if (crypto && typeof crypto.randomUUID === 'function') {
    try {
      return crypto.randomUUID();
    } catch (_) {
      // fall through: randomUUID exists but refuses outside a secure context in some builds
    }
  }
  const bytes = new Uint8Array(16);
  if (crypto && typeof crypto.getRandomValues === 'function') crypto.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = Array.from(bytes, (b) => (b + 0x100).toString(16).slice(1)).join('');
  return hex.slice(0, 8) + '-' + hex.slice(8, 12) + '-' + hex.slice(12, 16) + '-' +
    hex.slice(16, 20) + '-' + hex.slice(20);
}

// Bytes of a string once UTF-8 encoded (what the server's MAX_REQUEST_BYTES counts).
export function utf8Length(text) {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff) bytes += 2; // half of a 4-byte pair
    else if (code >= 0xdc00 && code <= 0xdfff) bytes += 2;
    else bytes += 3;
  }
  return bytes;
}
