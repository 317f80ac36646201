/**
 * The API reference as a newcomer sees it: TypeDoc builds it without a warning (every export sorted into
 * a section by docs/typedoc-plugin.mjs), and a real browser (headless Chromium) renders it: the
 * navigation lists the sections in reading order, createClient first; the title is not repeated;
 * Client's page shows the inherited `on`/`once` and links its event map. Screenshots go to
 * test-output/docs/ (or $WARREN_TEST_OUTPUT/docs/), to be looked at.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(fileURLToPath(import.meta.url), '../../..');
const output = join(process.env.WARREN_TEST_OUTPUT ?? join(root, 'test-output'), 'docs');
const chromium = ['chromium', 'chromium-browser'].find((c) => spawnSync(c, ['--version']).status === 0);
const noBrowser = chromium === undefined && (process.env.CI ? false : 'no chromium (apt-get install -y chromium)');

let site: string;
let profile: string;

before(async () => {
  site = mkdtempSync(join(tmpdir(), 'warren-docs-'));
  profile = mkdtempSync(join(tmpdir(), 'warren-chromium-'));
  mkdirSync(output, { recursive: true });
  const typedoc = join(root, 'node_modules/typedoc/bin/typedoc');
  try {
    await run(process.execPath, [typedoc, '--out', site], { cwd: root, timeout: 180_000 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    assert.fail(`typedoc failed (warnings count as errors):\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
});

after(() => {
  for (const dir of [site, profile]) if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs headless Chromium on a page of the site: its DOM after scripts ran, or a screenshot. */
async function browse(page: string, mode: { screenshot: string } | 'dom'): Promise<string> {
  assert.ok(chromium, 'chromium is installed (in CI: apt-get install -y chromium)');
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${profile}`,
    '--window-size=1400,1800',
    '--virtual-time-budget=5000',
    mode === 'dom' ? '--dump-dom' : `--screenshot=${mode.screenshot}`,
    pathToFileURL(join(site, page)).href,
  ];
  const { stdout } = await run(chromium, args, { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

const text = (html: string) => html.replace(/<wbr>/g, '').replace(/<[^>]+>/g, ' ');

describe('the API reference', () => {
  test('the front page: one title, then the README; a createClient example leads the reference', () => {
    const index = readFileSync(join(site, 'index.html'), 'utf8');
    assert.equal(index.match(/<h1[^>]*>/g)?.length, 1, 'one h1');
    assert.doesNotMatch(index, /<h2[^>]*>\s*(<a[^>]*>[^<]*<\/a>)?\s*warren\s*<\/h2>/, 'no second "warren" heading');
    const hierarchy = readFileSync(join(site, 'modules.html'), 'utf8');
    assert.match(text(hierarchy), /createClient/);
  });

  test('the navigation, as the browser renders it: sections in reading order, createClient first', {
    skip: noBrowser,
  }, async () => {
    const dom = await browse('index.html', 'dom');
    const sections = [...dom.matchAll(/data-key="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(
      sections.filter((s) => !s?.includes('/')),
      ['Robust client', 'Messages', 'Errors', 'Low-level API', 'Tracing', 'Guides', 'Command line'],
    );
    const robust = dom.slice(dom.indexOf('data-key="Robust client"'), dom.indexOf('data-key="Messages"'));
    const first = /<a href="([^"]+)"/.exec(robust)?.[1];
    assert.equal(first, './functions/createClient.html');
    const errors = dom.slice(dom.indexOf('data-key="Errors"'), dom.indexOf('data-key="Low-level API"'));
    assert.match(text(errors), /AMQPError/);
    assert.doesNotMatch(text(robust), /AMQPError|connect\b/, 'no errors or low-level API among the robust client');
  });

  test("Client's page: inherited on/once shown (not filtered as external), events linked", {
    skip: noBrowser,
  }, async () => {
    const page = readFileSync(join(site, 'classes/Client.html'), 'utf8');
    assert.match(page, /href="[^"]*ClientEvents\.html"/, 'links ClientEvents');
    const dom = await browse('classes/Client.html', 'dom');
    const on = /<section class="([^"]*)">\s*<h3 class="tsd-anchor-link" id="on">/.exec(dom);
    assert.ok(on, 'Client has an on() member');
    assert.doesNotMatch(on[1]!, /tsd-is-external/, 'not hidden by the default "External" filter');
    assert.doesNotMatch(dom, /id="defaultmaxlisteners"|id="errormonitor"/, "EventEmitter's statics are left out");
  });

  test('screenshots of the front page and of Client', { skip: noBrowser }, async () => {
    for (const [page, file] of [
      ['index.html', 'index.png'],
      ['classes/Client.html', 'client.png'],
    ] as const) {
      const shot = join(output, file);
      rmSync(shot, { force: true });
      await browse(page, { screenshot: shot });
      assert.ok(statSync(shot).size > 20_000, `${shot} holds a rendered page`);
      const png = readFileSync(shot);
      assert.equal(png.subarray(1, 4).toString(), 'PNG');
    }
  });
});
