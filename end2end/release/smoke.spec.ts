import { CDPSession, Page, devices } from '@playwright/test';
import { test, expect, hydrated, registerUser, uniqueName, wsOrigin, createWorkspace, open } from '../tests/fixtures';

/** Counts the bytes the browser receives over the network (headers and bodies, as sent). */
async function countTransfer(page: Page): Promise<{ cdp: CDPSession; bytes: () => number }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  let bytes = 0;
  cdp.on('Network.loadingFinished', (e) => {
    bytes += e.encodedDataLength;
  });
  return { cdp, bytes: () => bytes };
}

/** Loads `path` in this fresh browser and returns the kilobytes transferred until idle. */
async function firstVisit(page: Page, path: string): Promise<number> {
  const transfer = await countTransfer(page);
  await page.goto(path);
  await hydrated(page);
  await page.waitForLoadState('networkidle');
  await transfer.cdp.detach();
  return Math.round(transfer.bytes() / 1024);
}

test('the bundle is compressed, content-hashed and cached for good', async ({ page, request, isMobile }) => {
  test.skip(isMobile, 'headers do not depend on the device');
  // The binary serves the site it carries (not one it found on disk).
  expect((await (await request.get('/healthz')).json()).site).toBe('embedded');
  await page.goto('/login');
  const wasm = await page.locator('link[rel=preload][href$=".wasm"]').getAttribute('href');
  const js = await page.locator('link[rel=modulepreload]').getAttribute('href');
  const css = await page.locator('link[rel=stylesheet]#leptos').getAttribute('href');
  for (const href of [wasm, js, css]) {
    expect(href).toMatch(/^\/pkg\/qingting\.[0-9a-f]{16}\.(wasm|js|css)$/);
    for (const [accept, encoding] of [['br, gzip', 'br'], ['gzip', 'gzip']]) {
      const r = await request.head(href!, { headers: { 'accept-encoding': accept } });
      expect(r.status(), href!).toBe(200);
      expect(r.headers()['content-encoding'], `${href} with ${accept}`).toBe(encoding);
      expect(r.headers()['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(r.headers()['vary']).toBe('accept-encoding');
    }
    const plain = await request.get(href!, { headers: { 'accept-encoding': 'identity' } });
    expect(plain.headers()['content-encoding']).toBeUndefined();
    expect((await plain.body()).length).toBeGreaterThan(1000);
    const again = await request.get(href!, { headers: { 'accept-encoding': 'identity', 'if-none-match': plain.headers()['etag'] } });
    expect(again.status()).toBe(304);
  }
  // Pages are compressed on the fly.
  const html = await request.get('/login', { headers: { 'accept-encoding': 'br' } });
  expect(html.headers()['content-encoding']).toBe('br');
});

// The budget guards against an accidental jump; every page carries every page's views until
// routes are split into lazily loaded WASM (docs/performance.md, "The browser bundle").
const BUDGET_KB = 370;

test(`a first visit of /login transfers under ${BUDGET_KB} KB`, async ({ page }, info) => {
  const kb = await firstVisit(page, '/login');
  console.log(`[${info.project.name}] first visit of /login: ${kb} KB transferred`);
  expect(kb).toBeLessThan(BUDGET_KB);
});

test(`a first visit of /workspaces, signed in, transfers under ${BUDGET_KB} KB`, async ({ page, browser }, info) => {
  await registerUser(page, uniqueName('size'));
  const cached = await firstVisit(page, '/workspaces');
  // The same session in a browser with an empty cache.
  const device = devices[info.project.name === 'phone' ? 'Pixel 5' : 'Desktop Chrome'];
  const fresh = await browser.newContext({ ...device, storageState: await page.context().storageState() });
  const kb = await firstVisit(await fresh.newPage(), '/workspaces');
  await fresh.close();
  console.log(`[${info.project.name}] /workspaces: first visit ${kb} KB, with the bundle cached ${cached} KB`);
  expect(kb).toBeLessThan(BUDGET_KB);
});

test('register, create and open a VS Code and a Jupyter workspace', async ({ page, isMobile }) => {
  test.skip(isMobile, 'the IDEs are desktop apps; the phone runs the dashboard checks above');
  const user = await registerUser(page, uniqueName('smoke'));

  // The live list only works once the WASM runs: the card turns `running` through the
  // server's event stream, with no page load in between.
  await page.evaluate(() => ((window as unknown as { smoke: number }).smoke = 1));
  await createWorkspace(page, 'code', 'vscode-python');
  await expect(page.locator('#ws-name')).toHaveValue('');
  expect(await page.evaluate(() => (window as unknown as { smoke?: number }).smoke)).toBe(1);
  const vscode = await open(page, 'code');
  await expect(vscode).toHaveURL(new RegExp(`^${wsOrigin(user, 'code')}/`), { timeout: 30_000 });
  await expect(vscode.locator('.monaco-workbench')).toBeVisible({ timeout: 60_000 });
  await vscode.close();

  await createWorkspace(page, 'nb', 'jupyter-python');
  const lab = await open(page, 'nb');
  await expect(lab).toHaveURL(new RegExp(`^${wsOrigin(user, 'nb')}/lab`), { timeout: 30_000 });
  await expect(lab.locator('.jp-LabShell').first()).toBeVisible({ timeout: 60_000 });
  await lab.close();

  // Leave nothing running behind (a fresh-check server outlives this run).
  for (const name of ['code', 'nb']) {
    const card = page.locator(`[data-testid=workspace][data-name="${name}"]`);
    await card.locator('summary[data-action=delete]').click();
    await card.locator('button[data-action=delete]').click();
    await expect(card).toHaveCount(0, { timeout: 30_000 });
  }
});
