/**
 * The published package, as a user gets it: `npm pack`, install the tarball into an empty project
 * (offline: warren has no runtime dependencies), then `require('warren')`, `import … from 'warren'`,
 * the `warren` bin, a strict type check against the shipped .d.ts from ESM and CommonJS files, and
 * OpenTelemetry being optional (absent: nothing happens; present: picked up in both builds).
 * Then what a clean clone gives: `npm install <git URL>` (a local bare repository, file:// URL) and
 * `npm install <folder>` each build the package through `prepare` and install a working package.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { bareRepository, installedClone, installInto } from '../support/package.js';

const run = promisify(execFile);
const root = resolve(fileURLToPath(import.meta.url), '../../..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

let work: string;
let project: string;
let tarball: string;
let packedFiles: string[];

async function node(args: string[], cwd = project): Promise<string> {
  const { stdout } = await run(process.execPath, args, {
    cwd,
    timeout: 30_000,
    env: { ...process.env, WARREN_DEBUG: '' },
  });
  return stdout;
}

before(async () => {
  // What `npm run prepare` does on `npm pack`; done here once so that packing can skip it.
  await run(process.execPath, ['scripts/build.mjs', '--if-stale'], { cwd: root, timeout: 240_000 });
  work = mkdtempSync(join(tmpdir(), 'warren-pack-'));
  const { stdout } = await run(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', work], {
    cwd: root,
    timeout: 120_000,
  });
  const info = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, info[0]!.filename);
  packedFiles = info[0]!.files.map((f) => f.path);
  project = join(work, 'app');
  cpSync(join(root, 'test/package/fixture'), project, { recursive: true });
  // Kept as .txt in the repository, so that the project's own type check does not look for 'warren'.
  for (const f of ['use.mts', 'use.cts']) renameSync(join(project, `${f}.txt`), join(project, f));
  // Two type checks: as most projects compile (skipLibCheck), and with warren's own .d.ts checked too.
  for (const [file, skipLibCheck] of [
    ['tsconfig.json', true],
    ['tsconfig.libcheck.json', false],
  ] as const) {
    writeFileSync(
      join(project, file),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2022', 'ESNext.Disposable'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          exactOptionalPropertyTypes: true,
          noEmit: true,
          skipLibCheck,
          types: ['node'],
          typeRoots: [join(root, 'node_modules/@types')],
        },
        files: ['use.mts', 'use.cts'],
      }),
    );
  }
  await run(npm, ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', tarball], {
    cwd: project,
    timeout: 120_000,
  });
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the npm package', () => {
  test('npm pack --dry-run lists dist, README, LICENSE and package.json only', async () => {
    const { stdout } = await run(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: root,
      timeout: 120_000,
    });
    const listed = (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    assert.deepEqual([...listed].sort(), [...packedFiles].sort(), 'the dry run lists what the tarball holds');
    for (const f of listed) {
      assert.doesNotMatch(f, /^(test|bench|scripts|src|examples|docs|codegen|\.ci)\//, `${f} does not ship`);
      assert.ok(!f.endsWith('.build-stamp'), 'the build stamp does not ship');
    }
  });

  test('package.json: metadata, and types for every subpath in both module systems', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      engines: { node: string };
      sideEffects: boolean;
      keywords: string[];
      scripts: Record<string, string>;
      exports: Record<string, string | Record<string, Record<string, string>>>;
    };
    assert.match(pkg.engines.node, /^>=20/);
    assert.equal(pkg.sideEffects, false);
    assert.ok(pkg.keywords.includes('amqp') && pkg.keywords.includes('rabbitmq'));
    assert.match(pkg.scripts.prepare ?? '', /scripts\/build\.mjs/, 'a clone builds itself on install and on pack');
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      if (subpath === './package.json') continue;
      assert.equal(typeof target, 'object', `${subpath} has import and require conditions`);
      for (const condition of ['import', 'require']) {
        const entry = (target as Record<string, Record<string, string>>)[condition];
        assert.ok(entry?.types && entry.default, `${subpath} ${condition} has types and default`);
        assert.ok(Object.keys(entry)[0] === 'types', `${subpath} ${condition}: types comes first`);
        for (const f of [entry.types, entry.default]) {
          assert.ok(packedFiles.includes(f.replace(/^\.\//, '')), `${subpath} ${condition}: ${f} is in the package`);
        }
      }
    }
  });

  test('the .d.ts files hold no @internal declarations; the .js files have source maps with their sources', () => {
    const dts = packedFiles.filter((f) => f.endsWith('.d.ts'));
    const js = packedFiles.filter((f) => f.endsWith('.js'));
    assert.ok(dts.length > 20 && js.length > 20);
    for (const f of dts) {
      assert.doesNotMatch(readFileSync(join(project, 'node_modules/warren', f), 'utf8'), /@internal/, f);
    }
    for (const f of js) assert.ok(packedFiles.includes(`${f}.map`), `${f}.map ships`);
    const map = JSON.parse(
      readFileSync(join(project, 'node_modules/warren/dist/esm/client/client.js.map'), 'utf8'),
    ) as {
      sourcesContent?: string[];
    };
    assert.match(
      map.sourcesContent?.[0] ?? '',
      /export function createClient/,
      'the map carries the TypeScript source',
    );
  });

  test('ships dist, README, LICENSE and package.json only', () => {
    for (const f of packedFiles) {
      assert.match(f, /^(dist\/|README\.md$|LICENSE$|package\.json$)/, `unexpected file in the package: ${f}`);
    }
    for (const f of [
      'dist/esm/index.js',
      'dist/esm/index.d.ts',
      'dist/cjs/index.js',
      'dist/cjs/index.d.ts',
      'dist/esm/cli/main.js',
      'dist/esm/amqplib/index.js',
      'dist/esm/amqplib/index.d.ts',
      'dist/esm/amqplib/callback-api.js',
      'dist/esm/amqplib/callback-api.d.ts',
      'dist/cjs/amqplib/index.js',
      'dist/cjs/amqplib/index.d.ts',
      'dist/cjs/amqplib/callback-api.js',
      'dist/cjs/amqplib/callback-api.d.ts',
      'package.json',
    ]) {
      assert.ok(packedFiles.includes(f), `${f} is in the package`);
    }
    assert.ok(!packedFiles.some((f) => f.includes('.test.')), 'no tests');
  });

  test('require() works (CommonJS build) with the public API', async () => {
    const out = await node([
      '-e',
      "const w = require('warren'); console.log(JSON.stringify([typeof w.connect, typeof w.createClient, typeof w.AMQPError, w.VERSION, require.resolve('warren')]))",
    ]);
    const [connect, createClient, errorClass, version, resolved] = JSON.parse(out) as string[];
    assert.deepEqual([connect, createClient, errorClass], ['function', 'function', 'function']);
    assert.match(version!, /^\d+\.\d+\.\d+/);
    assert.match(resolved!, /node_modules[\\/]warren[\\/]dist[\\/]cjs[\\/]index\.js$/);
  });

  test('import works (ESM build) and exports the same names as require()', async () => {
    const esm = await node([
      '--input-type=module',
      '-e',
      "import * as w from 'warren'; import { connect, createClient } from 'warren'; console.log(JSON.stringify([typeof connect, typeof createClient, Object.keys(w).sort()]))",
    ]);
    const cjs = await node([
      '-e',
      "console.log(JSON.stringify(Object.keys(require('warren')).filter((k) => k !== '__esModule').sort()))",
    ]);
    const [connect, createClient, names] = JSON.parse(esm) as [string, string, string[]];
    assert.deepEqual([connect, createClient], ['function', 'function']);
    assert.deepEqual(names, JSON.parse(cjs));
  });

  test('one set of error classes: instanceof holds across the ESM and the CommonJS build in one process', async () => {
    // An application (ESM) whose dependency require()s warren gets both builds loaded at once.
    const out = await node([
      '--input-type=module',
      '-e',
      `import * as esm from 'warren';
       import { createRequire } from 'node:module';
       const cjs = createRequire(import.meta.url)('warren');
       let thrown;
       try { await cjs.connect('amqp://127.0.0.1:1', { heartbeat: -1 }); } catch (err) { thrown = err; }
       const fromCjs = new cjs.InvalidArgumentError('x');
       const fromEsm = new esm.ConsumerCancelled('q');
       const userCode = new cjs.UserCodeError('test listener', new Error('boom'));
       console.log(JSON.stringify({
         distinct: esm.AMQPError !== cjs.AMQPError,
         thrown: [thrown instanceof esm.AMQPError, thrown instanceof esm.InvalidArgumentError, thrown instanceof esm.ConnectionError],
         cjsInEsm: [fromCjs instanceof esm.AMQPError, fromCjs instanceof esm.InvalidArgumentError, fromCjs instanceof esm.ConnectionError, fromCjs instanceof Error],
         esmInCjs: [fromEsm instanceof cjs.AMQPError, fromEsm instanceof cjs.ConsumerCancelled, fromEsm instanceof cjs.TimeoutError],
         userCode: [userCode instanceof esm.UserCodeError, userCode instanceof esm.AMQPError],
         plain: [new Error('x') instanceof esm.AMQPError, null instanceof esm.AMQPError, ({}) instanceof cjs.AMQPError],
       }));`,
    ]);
    assert.deepEqual(JSON.parse(out), {
      distinct: true,
      thrown: [true, true, false],
      cjsInEsm: [true, true, false, true],
      esmInCjs: [true, true, false],
      userCode: [true, false],
      plain: [false, false, false],
    });
  });

  test('connects to the broker from both builds', async () => {
    const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
    const script = (mod: string) =>
      `${mod}; const c = await connect(${JSON.stringify(url)}); const ch = await c.openChannel(); const q = await ch.queueDeclare('', { exclusive: true }); await ch.basicPublish('', q.queue, Buffer.from('hi')); const m = await ch.basicGet(q.queue, { noAck: true }); console.log(m.body.toString()); await c.close();`;
    assert.equal(await node(['--input-type=module', '-e', script("import { connect } from 'warren'")]), 'hi\n');
    assert.equal(
      await node([
        '-e',
        `(async () => { ${script("const { connect } = require('warren')")} })().catch((e) => { console.error(e); process.exit(1); })`,
      ]),
      'hi\n',
    );
  });

  test('warren/amqplib and warren/amqplib/callback_api: require() and import, and a round trip with each', async () => {
    const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
    const promiseApi = (mod: string) =>
      `${mod}; const c = await amqp.connect(${JSON.stringify(url)}); const ch = await c.createChannel(); const q = await ch.assertQueue('', { exclusive: true }); ch.sendToQueue(q.queue, Buffer.from('hi')); await new Promise((r) => setTimeout(r, 100)); const m = await ch.get(q.queue, { noAck: true }); console.log(m.content.toString(), m.properties.headers !== undefined); await c.close();`;
    assert.equal(
      await node(['--input-type=module', '-e', promiseApi("import amqp from 'warren/amqplib'")]),
      'hi true\n',
    );
    assert.equal(
      await node([
        '-e',
        `(async () => { ${promiseApi("const amqp = require('warren/amqplib')")} })().catch((e) => { console.error(e); process.exit(1); })`,
      ]),
      'hi true\n',
    );
    const callbackApi = (mod: string) =>
      `${mod}; amqp.connect(${JSON.stringify(url)}, (err, c) => { if (err) throw err; c.createChannel((err, ch) => { if (err) throw err; ch.assertQueue('', { exclusive: true }, (err, q) => { if (err) throw err; ch.consume(q.queue, (m) => { console.log(m.content.toString()); c.close(() => {}); }, { noAck: true }); ch.sendToQueue(q.queue, Buffer.from('cb')); }); }); });`;
    assert.equal(await node(['-e', callbackApi("const amqp = require('warren/amqplib/callback_api')")]), 'cb\n');
    assert.equal(
      await node(['--input-type=module', '-e', callbackApi("import amqp from 'warren/amqplib/callback_api'")]),
      'cb\n',
    );
  });

  test('the bin runs: warren --version and --help', async () => {
    const bin = join(project, 'node_modules/.bin/warren');
    const { stdout: version } = await run(bin, ['--version'], { cwd: project, timeout: 30_000 });
    assert.match(version, /^\d+\.\d+\.\d+\n$/);
    const { stdout: help } = await run(bin, ['--help'], { cwd: project, timeout: 30_000 });
    assert.match(help, /Usage: warren <command>/);
  });

  async function typeCheck(project: string, config: string): Promise<void> {
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    try {
      await run(process.execPath, [tsc, '-p', config], { cwd: project, timeout: 120_000 });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      assert.fail(`type check of the installed package failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
  }

  test('types: strict tsc accepts correct use and rejects wrong use, from .mts and .cts files', async () => {
    // The @ts-expect-error lines in the fixture fail the check if the types were missing or `any`.
    await typeCheck(project, 'tsconfig.json');
  });

  test('types: the shipped .d.ts files type-check on their own (skipLibCheck: false)', async () => {
    await typeCheck(project, 'tsconfig.libcheck.json');
  });

  test("the README's first consumer works as written", async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Your first consumer'));
    const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(code, 'the README has a js block under "Your first consumer"');
    const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
    writeFileSync(join(project, 'consumer.mjs'), code.replace('amqp://guest:guest@127.0.0.1:5672', url));
    const child = spawn(process.execPath, ['consumer.mjs'], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((done) => child.on('close', done));
    try {
      const until = Date.now() + 20_000;
      while (!out.includes('received Hello, warren!') && Date.now() < until && child.exitCode === null) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(
        out,
        /^received Hello, warren! \{\}$/m,
        `the first line names the message, and no 'undefined'; stdout: ${out}\nstderr: ${err}`,
      );
      // The command from the README, with the installed bin, reaches the running consumer.
      const bin = join(project, 'node_modules/.bin/warren');
      await run(bin, ['publish', '-q', 'hello', 'another one', '-H', 'source=cli', '--url', url], {
        cwd: project,
        timeout: 30_000,
      });
      while (!out.includes('received another one') && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, /received another one \{ source: 'cli' \}/);
      child.kill('SIGINT');
      assert.equal(await exited, 0, `the consumer exits cleanly on Ctrl-C; stderr: ${err}`);
      await run(bin, ['queue', 'delete', 'hello', '--url', url], { cwd: project, timeout: 30_000 });
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('without @opentelemetry/api tracing stays off, in both builds', async () => {
    const check =
      "const on = await w.tracingReady(); let called = false; const r = await w.tracePublish({ exchange: '', routingKey: 'q', body: Buffer.alloc(1), properties: { headers: { a: 1 } } }, async (p) => { called = true; return p; }); console.log(JSON.stringify([on, called, r]));";
    const esm = await node(['--input-type=module', '-e', `import * as w from 'warren'; ${check}`]);
    const cjs = await node(['-e', `(async () => { const w = require('warren'); ${check} })()`]);
    for (const out of [esm, cjs]) assert.deepEqual(JSON.parse(out), [false, true, { headers: { a: 1 } }]);
  });

  test('with @opentelemetry/api installed, tracing turns on by itself in both builds', async () => {
    const otelProject = join(work, 'app-otel');
    cpSync(project, otelProject, { recursive: true });
    cpSync(join(root, 'node_modules/@opentelemetry/api'), join(otelProject, 'node_modules/@opentelemetry/api'), {
      recursive: true,
    });
    // An application span and no SDK: warren still carries its context in the headers.
    const esm = await node(['otel-check.mjs'], otelProject);
    const cjs = await node(['otel-check.cjs'], otelProject);
    // From a working directory that cannot resolve the package, the ESM build finds it through import().
    const elsewhere = await node([join(otelProject, 'otel-check.mjs')], work);
    for (const out of [esm, cjs, elsewhere]) {
      const [on, headers] = JSON.parse(out) as [boolean, Record<string, string>];
      assert.equal(on, true);
      assert.equal(headers.traceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    }
  });
});

describe('installed from a clean clone', () => {
  let scratch: string;
  const apps: Record<'git' | 'folder', string> = { git: '', folder: '' };

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'warren-clone-'));
    apps.git = join(scratch, 'app-git');
    apps.folder = join(scratch, 'app-folder');
    const clone = await installedClone(join(scratch, 'clone'));
    assert.ok(!existsSync(join(clone, 'dist')), 'a clean clone has no dist');
    // From git, npm clones the repository, installs its devDependencies, runs prepare (the build) and
    // packs it; from a folder (--install-links: a copy, as from a registry), it runs prepare and packs.
    const gitUrl = await bareRepository(scratch);
    await Promise.all([installInto(apps.git, gitUrl), installInto(apps.folder, clone, ['--install-links'])]);
  });

  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  for (const key of ['git', 'folder'] as const) {
    test(`from ${key === 'git' ? 'a git URL' : 'a folder'}: built, importable, required, and the bin runs`, async () => {
      const app = apps[key];
      const installed = join(app, 'node_modules/warren');
      assert.ok(existsSync(join(installed, 'dist/cjs/index.js')) && existsSync(join(installed, 'dist/esm/index.d.ts')));
      assert.ok(!existsSync(join(installed, 'src')) && !existsSync(join(installed, 'test')), 'only the files list');
      const esm = await node(
        [
          '--input-type=module',
          '-e',
          "import { createClient, AMQPError } from 'warren'; console.log(typeof createClient, typeof AMQPError)",
        ],
        app,
      );
      const cjs = await node(['-e', "const w = require('warren'); console.log(typeof w.createClient, w.VERSION)"], app);
      assert.equal(esm, 'function function\n');
      assert.match(cjs, /^function \d+\.\d+\.\d+/);
      const { stdout } = await run(join(app, 'node_modules/.bin/warren'), ['--version'], { cwd: app, timeout: 30_000 });
      assert.match(stdout, /^\d+\.\d+\.\d+\n$/);
    });
  }
});
