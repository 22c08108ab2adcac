// Self-tests of the live checks against a minimal Node stand-in origin
// (lib/standin-origin.mjs), so a live failure against casterpak can be
// trusted to be casterpak's:
//   - chunked pass-through: the live dash.js case must PASS;
//   - segments sent only once complete: the latency bound must FAIL.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { launchBrowser, summarize } from '../lib/harness.mjs';
import { runLiveDashCase } from '../lib/live.mjs';
import { killAll, tempDir } from '../lib/procs.mjs';
import { startStaticServer } from '../lib/static-server.mjs';
import { startStandinOrigin } from '../lib/standin-origin.mjs';

describe('live LL-DASH on the Node stand-in origin', { timeout: 240_000 }, () => {
  let browser, pages, empty;
  const origins = [];

  before(async () => {
    browser = await launchBrowser();
    empty = tempDir('empty');
    pages = await startStaticServer({ root: empty });   // serves /player/ only
  });

  after(async () => {
    await browser?.close();
    await pages?.close();
    await Promise.all(origins.map((o) => o.stop()));
    await killAll();
    if (empty) fs.rmSync(empty, { recursive: true, force: true });
  });

  it('dash.js live from a chunked stand-in: latency < 2.0 s for 20 s', async () => {
    const origin = await startStandinOrigin({ mode: 'chunked' });
    origins.push(origin);
    const v = await runLiveDashCase(browser, { ...origin, pageBase: pages.url });
    console.log(`stand-in chunked: ${summarize(v)}`);
    assert.ok(v.pass, v.failures.join('\n'));
    assert.ok(v.summary.windowSeconds >= 19, `judged only ${v.summary.windowSeconds} s`);
  });

  it('must fail: dash.js live from a stand-in that sends only complete segments', async () => {
    const origin = await startStandinOrigin({ mode: 'complete' });
    origins.push(origin);
    const v = await runLiveDashCase(browser, { ...origin, pageBase: pages.url, windowSeconds: 12 });
    console.log(`stand-in complete-only: ${summarize(v)}`);
    assert.equal(v.pass, false, 'the harness passed a live stream that is not delivered chunked');
  });
});
