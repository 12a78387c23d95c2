// The shell page as a person sees it, in a real browser: headless Chromium (Debian's `chromium`,
// scripts/setup-host-tools.sh installs it) driven by playwright-core opens the page that
// private/docker-worker/shell.html leads to, types a command and sees its output.
// SCREENSHOT=docs/interactive-shell.png keeps a picture of the page (the README shows it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type Browser } from 'playwright-core';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

let h: WorkerHarness;
let browser: Browser | undefined;
before(async () => {
  assert.ok(CHROMIUM, 'Debian\'s chromium is not installed: run scripts/setup-host-tools.sh as root');
  h = await WorkerHarness.start({ config: { 'interactive.minTimeSeconds': 2, 'interactive.expirySeconds': 1 } });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
});
after(async () => { await browser?.close(); await h?.stop(); });

async function shellPageUrl(taskId: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const url = h.queue.buildSignedUrl(h.queue.getArtifact, taskId, 0, 'private/docker-worker/shell.html') as string;
    const res = await fetch(url, { redirect: 'manual' });
    if (res.status === 303 || res.status === 302) return new URL(res.headers.get('location')!, url).toString();
    await sleep(100);
  }
  throw new Error(`no shell artifact for ${taskId}`);
}

test('shell.html: type a command in the browser and see its output', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo built > /tmp/result.txt'], maxRunTime: 120, features: { interactive: true },
  });
  const pageUrl = await shellPageUrl(taskId);
  const page = await browser!.newPage({ viewport: { width: 900, height: 420 } });
  try {
    await page.goto(pageUrl);
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'connected');
    await page.locator('.xterm-helper-textarea').focus();
    await page.keyboard.type('cat /tmp/result.txt; echo "answer=$((6*7))"');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /answer=42/.test(document.querySelector('.xterm-rows')?.textContent ?? ''), undefined, { timeout: 20_000 });
    const screen = await page.locator('.xterm-rows').textContent() ?? '';
    assert.match(screen, /built/, 'the file the task wrote');
    assert.match(screen, /answer=42/);
    if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT });
    await page.keyboard.type('exit');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /exited with code 0/.test(document.getElementById('status')?.textContent ?? ''));
  } finally {
    await page.close();
  }
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'completed');
});
