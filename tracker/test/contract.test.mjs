// Drift: the tracker's copy of the event contract must be the server's
// (shared/contract/events.py and shared/ingestion/service.py, read as text).
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as contract from '../src/contract.mjs';

const EVENTS_PY = new URL('../../shared/contract/events.py', import.meta.url);
const SERVICE_PY = new URL('../../shared/ingestion/service.py', import.meta.url);
const source = readFileSync(EVENTS_PY, 'utf8');

function integer(text, name) {
  const match = new RegExp('^' + name + '\\s*=\\s*([0-9_]+)\\s*(?:#.*)?$', 'm').exec(text);
  assert.ok(match, name + ' not found');
  return Number(match[1].replace(/_/g, ''));
}

test('EVENT_TYPES: the values of class EventType, in order', () => {
  const body = /^class EventType\(StrEnum\):\n((?:[ \t]+.*\n|\n)+?)(?=^\S)/m.exec(source);
  assert.ok(body, 'class EventType not found');
  const values = [...body[1].matchAll(/^\s+[A-Z_]+\s*=\s*"([a-z_]+)"/gm)].map((m) => m[1]);
  assert.ok(values.length > 0);
  assert.deepEqual(contract.EVENT_TYPES, values);
});

test('FORBIDDEN_FIELDS: the same set', () => {
  const body = /^FORBIDDEN_FIELDS\s*=\s*frozenset\(\s*\{([^}]*)\}\s*\)/m.exec(source);
  assert.ok(body, 'FORBIDDEN_FIELDS not found');
  const fields = [...body[1].matchAll(/"([^"]+)"/g)].map((m) => m[1]);
  assert.ok(fields.length > 10);
  assert.deepEqual([...contract.FORBIDDEN_FIELDS].sort(), fields.sort());
});

test('MAX_EVENTS_PER_REQUEST, MAX_DEPTH, MAX_EMAIL_LENGTH, SCHEMA_VERSION: the same numbers', () => {
  for (const name of ['MAX_EVENTS_PER_REQUEST', 'MAX_DEPTH', 'MAX_EMAIL_LENGTH', 'SCHEMA_VERSION']) {
    assert.equal(contract[name], integer(source, name), name);
  }
});

test('MAX_REQUEST_BYTES: the ingest service\'s', () => {
  const match = /^MAX_REQUEST_BYTES\s*=\s*(.+?)\s*(?:#.*)?$/m.exec(readFileSync(SERVICE_PY, 'utf8'));
  assert.ok(match, 'MAX_REQUEST_BYTES not found');
  assert.match(match[1], /^[0-9_ *]+$/); // a product of integers, evaluated below
  const value = match[1].split('*').reduce((product, factor) => product * Number(factor.trim().replace(/_/g, '')), 1);
  assert.equal(contract.MAX_REQUEST_BYTES, value);
});

test('IDENTIFIER: the same pattern', () => {
  const match = /^IDENTIFIER\s*=\s*r"([^"]+)"/m.exec(source);
  assert.ok(match, 'IDENTIFIER not found');
  assert.equal(contract.IDENTIFIER.source, match[1]);
  assert.equal(contract.IDENTIFIER.flags, '');
});

test('looks_like_email is the linear function the tracker mirrors (no regex in it)', () => {
  const body = /^def looks_like_email\(text: str\) -> bool:\n((?:[ \t]+.*\n|\n)+?)(?=^\S)/m.exec(source);
  assert.ok(body, 'looks_like_email not found');
  // The rules the tracker implements; a change of the server's function shows here.
  for (const rule of ['len(text) > MAX_EMAIL_LENGTH', 'c.isspace()', 'text.partition("@")', '"@" in domain', '"." in domain[1:-1]']) {
    assert.ok(body[1].includes(rule), 'the server\'s looks_like_email changed: ' + rule);
  }
});

// Where the repository's Python (with pydantic) can run, the two functions are compared on
// the same inputs. Skipped elsewhere: the text checks above still hold.
test('looksLikeEmail answers as the server\'s looks_like_email on tricky inputs', (t) => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const python = [root + '.venv/bin/python', 'python3'].find((p) => p === 'python3' || existsSync(p));
  const cases = [
    'a@b.c', 'jane.doe@example.com', 'a@b..c', 'a@.b.c', '', '@b.c', 'a@', 'a@b', 'a@.c', 'a@b.',
    'a@@b.c', 'a@b@c.d', 'a b@c.d', 'a@b.c\n', 'a\u3000@b.c', 'a@b.c\x1c', 'a@b.c\x85', 'a@b.c\ufeff',
    'a@b.c\u00a0', 'a@b.c\u200b', 'a@' + 'b'.repeat(250) + '.c', 'a@' + 'b'.repeat(251) + '.c',
    '\u{1F600}'.repeat(200) + '@b.c', '\u{1F600}'.repeat(260) + '@b.c', 'é'.repeat(250) + '@b.c',
    'a@' + '.'.repeat(240) + '@', 'customer-42', ' a@b.c',
  ];
  const script = 'import json, sys\nsys.path.insert(0, sys.argv[1])\n' +
    'from shared.contract.events import looks_like_email\n' +
    'print(json.dumps([looks_like_email(t) for t in json.loads(sys.stdin.read())]))\n';
  const run = spawnSync(python, ['-c', script, root], { input: JSON.stringify(cases), encoding: 'utf8' });
  if (run.status !== 0) {
    t.skip('no Python with pydantic here: ' + String(run.stderr || run.error).split('\n').filter(Boolean).pop());
    return;
  }
  const server = JSON.parse(run.stdout);
  cases.forEach((text, i) => assert.equal(contract.looksLikeEmail(text), server[i], JSON.stringify(text.slice(0, 30))));
});

test('the event types a publishable key may not send: the ingest API\'s ORDER_EVENT_TYPES', (t) => {
  for (const type of contract.SECRET_KEY_TYPES) assert.ok(contract.EVENT_TYPES.includes(type), type);
  const api = readFileSync(new URL('../../shared/ingestion/api.py', import.meta.url), 'utf8');
  const match = /^ORDER_EVENT_TYPES\s*=\s*frozenset\(\{([^}]*)\}\)/m.exec(api);
  if (!match) {
    t.skip('shared/ingestion/api.py defines no ORDER_EVENT_TYPES');
    return;
  }
  // EventType.CART_VALIDATED -> "cart_validated", through the enum's own definition
  const names = new Map([...source.matchAll(/^\s+([A-Z_]+)\s*=\s*"([a-z_]+)"/gm)].map((m) => [m[1], m[2]]));
  const types = [...match[1].matchAll(/EventType\.([A-Z_]+)/g)].map((m) => names.get(m[1]));
  assert.deepEqual([...contract.SECRET_KEY_TYPES].sort(), types.sort());
});
