// Builds dist/cartwise.min.js (one-file IIFE: window.cartwise) and dist/cartwise.esm.js,
// and records their sizes in dist/SIZE.json.
//
//   node build.mjs                 build into dist/
//   node build.mjs --out DIR       build into DIR (test/dist.test.mjs compares it with dist/)
//   node build.mjs --size          print the sizes of what dist/ holds, build nothing
//
// esbuild is the one devDependency (npm ci); the tracker itself has no dependency and its
// tests import src/ directly.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
const out = outAt >= 0 ? args[outAt + 1] : join(here, 'dist');
const { version } = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));
const banner = '/*! @cartwise/tracker ' + version + ' */';

const FILES = ['cartwise.min.js', 'cartwise.esm.js'];

function sizes(dir) {
  const report = {};
  for (const name of FILES) {
    const bytes = readFileSync(join(dir, name));
    report[name] = { minified: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  }
  return report;
}

function print(report) {
  for (const [name, size] of Object.entries(report)) {
    const raw = size.raw != null ? String(size.raw).padStart(7) + ' B raw  ' : '';
    console.log(name.padEnd(18) + raw + String(size.minified).padStart(6) + ' B min  ' +
      String(size.gzip).padStart(5) + ' B min+gzip');
  }
}

if (args.includes('--size')) {
  if (!existsSync(join(out, FILES[0]))) {
    console.error('no build in ' + out + ': run npm run build');
    process.exit(1);
  }
  print(sizes(out));
  process.exit(0);
}

const esbuild = await import('esbuild').catch(() => {
  console.error('esbuild is missing: run `npm ci` in tracker/ first');
  process.exit(1);
});

mkdirSync(out, { recursive: true });
const common = {
  bundle: true,
  minify: true,
  target: ['es2018'], // every browser with fetch keepalive, sendBeacon and IntersectionObserver
  legalComments: 'none',
  banner: { js: banner },
  write: false,
  logLevel: 'warning',
};
const builds = [
  { name: 'cartwise.min.js', options: { entryPoints: [join(here, 'src/browser.mjs')], format: 'iife' } },
  { name: 'cartwise.esm.js', options: { entryPoints: [join(here, 'src/index.mjs')], format: 'esm' } },
];
// The unminified bundle's size, for the record ("raw").
const raw = {};
for (const { name, options } of builds) {
  const plain = await esbuild.build({ ...common, ...options, minify: false });
  raw[name] = plain.outputFiles[0].contents.length;
  const result = await esbuild.build({ ...common, ...options });
  writeFileSync(join(out, name), result.outputFiles[0].contents);
}
const report = sizes(out);
for (const name of FILES) report[name] = { raw: raw[name], ...report[name] };
writeFileSync(join(out, 'SIZE.json'), JSON.stringify({ version, esbuild: esbuild.version, ...report }, null, 2) + '\n');
print(report);
