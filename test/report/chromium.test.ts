/**
 * report.html in a real browser: Debian's Chromium, headless, offline. The page
 * must render (a screenshot of real size), show the numbers report.json has
 * (read back from the DOM Chromium built, by their data-* attributes), and the
 * hostile probe output in it must stay text: no script ran, no element was made
 * from it.
 *
 * Chromium is found at $WARD_CHROMIUM or /usr/bin/chromium (`apt-get install -y
 * chromium`; .ci/run installs it). Without it these tests are skipped, saying so.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { writeReport, type ReportDocument } from '../../src/report/index.js';
import { tempDir } from '../helpers.js';
import { pageNumbers, sampleInput } from './fixture.js';

const CHROMIUM = process.env.WARD_CHROMIUM || '/usr/bin/chromium';

function available(): boolean {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
const skip = available() ? false : `${CHROMIUM} is not installed (apt-get install -y chromium, or set WARD_CHROMIUM): the report is not checked in a browser`;
if (skip) process.stderr.write(`# skipping Chromium tests: ${skip}\n`);

/** Chromium headless with no network, no profile of the user's, nothing kept. */
function chromium(args: string[], base: string) {
  const profile = path.join(base, `profile-${Math.random().toString(36).slice(2)}`);
  const home = path.join(base, 'chromium-home');
  mkdirSync(home, { recursive: true });
  const r = spawnSync(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-extensions',
      '--hide-scrollbars',
      `--user-data-dir=${profile}`,
      ...args,
    ],
    { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_CACHE_HOME: path.join(home, '.cache') } },
  );
  if (r.error) throw r.error;
  return r;
}

async function report() {
  const base = tempDir('ward-chromium-');
  const ws = path.join(base, 'ws');
  const home = path.join(base, 'home');
  mkdirSync(ws);
  mkdirSync(home);
  const out = await writeReport(path.join(base, 'out'), sampleInput({ workspace: ws, home }));
  return { base, out, doc: JSON.parse(readFileSync(out.json, 'utf8')) as ReportDocument };
}

describe('report.html in headless Chromium', () => {
  it('the DOM Chromium builds shows the numbers, probe rows and policy hash of report.json, and the hostile detail stayed text', { skip }, async () => {
    const { base, out, doc } = await report();
    const r = chromium(['--dump-dom', pathToFileURL(out.html).href], base);
    assert.equal(r.status, 0, r.stderr);
    const dom = r.stdout;
    assert.match(dom, /<h1 id="verdict"/, `Chromium printed no page: ${dom.slice(0, 300)} ${r.stderr.slice(-500)}`);
    const page = pageNumbers(dom);
    assert.equal(page.held, doc.summary.held);
    assert.equal(page.broken, doc.summary.broken);
    assert.equal(page.error, doc.summary.error);
    assert.equal(page.skipped, doc.summary.skipped);
    assert.equal(page.probes, doc.probes.probes.length);
    assert.equal(page.rows.length, doc.probes.probes.length);
    assert.deepEqual(page.rows, doc.probes.probes.map((p) => ({ id: p.id, status: p.status })));
    assert.equal(page.policy, doc.policy.sha256);
    assert.equal(page.verdict, doc.verdict);
    // The probe output's <script> would have retitled the page, its <img> would be an element.
    assert.doesNotMatch(dom, /<title>[^<]*pwned/);
    assert.doesNotMatch(dom, /<script|<img/i);
    assert.match(dom, /&lt;script&gt;document\.title="pwned"/);
  });

  it('renders: a screenshot of the page is a PNG of real size', { skip }, async () => {
    const { base, out } = await report();
    const png = path.join(base, 'report.png');
    const r = chromium(['--window-size=1280,2400', `--screenshot=${png}`, pathToFileURL(out.html).href], base);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(png), `no screenshot: ${r.stderr.slice(-500)}`);
    const bytes = readFileSync(png);
    assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
    assert.equal(bytes.readUInt32BE(16), 1280, 'IHDR width');
    assert.equal(bytes.readUInt32BE(20), 2400, 'IHDR height');
    // A blank 1280x2400 page compresses to a few kB; this one has tables, colour and text.
    assert.ok(statSync(png).size > 100_000, `screenshot only ${statSync(png).size} bytes`);
  });

  it('prints: the print stylesheet produces a multi-page PDF', { skip }, async () => {
    const { base, out } = await report();
    const pdf = path.join(base, 'report.pdf');
    const r = chromium(['--no-pdf-header-footer', `--print-to-pdf=${pdf}`, pathToFileURL(out.html).href], base);
    assert.equal(r.status, 0, r.stderr);
    const text = readFileSync(pdf).toString('latin1');
    assert.ok(text.startsWith('%PDF-'), 'a PDF');
    const pages = Number(/\/Type\s*\/Pages[^>]*\/Count\s+(\d+)/.exec(text)?.[1] ?? (text.match(/\/Type\s*\/Page[^s]/g) ?? []).length);
    assert.ok(pages >= 2, `${pages} page(s)`);
  });
});
