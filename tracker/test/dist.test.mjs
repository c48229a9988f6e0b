// dist/ is checked in: it must be what `npm run build` makes of src/ now.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';

const root = fileURLToPath(new URL('..', import.meta.url));
const FILES = ['cartwise.min.js', 'cartwise.esm.js'];

test('dist/ is current (rebuilt into a temp dir, byte for byte)', (t) => {
  if (!existsSync(join(root, 'node_modules', 'esbuild'))) {
    t.skip('esbuild is not installed (run `npm ci` in tracker/ to check dist/)');
    return;
  }
  const out = mkdtempSync(join(tmpdir(), 'cartwise-dist-'));
  try {
    const run = spawnSync(process.execPath, [join(root, 'build.mjs'), '--out', out], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    for (const name of FILES) {
      const fresh = readFileSync(join(out, name));
      const committed = readFileSync(join(root, 'dist', name));
      assert.ok(fresh.equals(committed), 'dist/' + name + ' is stale: run `npm run build` in tracker/');
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('dist/cartwise.min.js defines window.cartwise with init and the typed helpers', () => {
  const code = readFileSync(join(root, 'dist', 'cartwise.min.js'), 'utf8');
  const window = {};
  window.window = window;
  runInNewContext(code, window);
  const { cartwise } = window;
  assert.equal(typeof cartwise, 'object');
  for (const name of ['init', 'track', 'pageViewed', 'flush', 'onExperiences', 'onError', 'render', 'observe', 'play', 'claim', 'optOut']) {
    assert.equal(typeof cartwise[name], 'function', name);
  }
  assert.equal(cartwise.track('page_viewed', {}).error.code, 'not_initialized');
});

test('dist/SIZE.json records the sizes of the files in dist/', () => {
  const sizes = JSON.parse(readFileSync(join(root, 'dist', 'SIZE.json'), 'utf8'));
  for (const name of FILES) {
    assert.equal(sizes[name].minified, readFileSync(join(root, 'dist', name)).length, name);
    assert.ok(sizes[name].gzip > 0 && sizes[name].gzip < sizes[name].minified);
  }
});
