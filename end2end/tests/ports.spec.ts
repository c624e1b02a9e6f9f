import { Browser, Page } from '@playwright/test';
import path from 'node:path';
import { test, expect, registerUser, createWorkspace, open, port, wsOrigin } from './fixtures';

const previewOrigin = (user: string, ws: string, p: number) => `http://${p}-${user}-${ws}.localhost:${port}`;

/** In the workspace's terminal: a virtualenv with a package from PyPI (its version written to
 * pip-ok.txt), a page, and `python -m http.server 8000` serving the workspace folder. */
const COMMANDS =
  'python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -q six && ' +
  "/tmp/venv/bin/python -c \"import six; open('pip-ok.txt','w').write(six.__version__)\" && " +
  'echo hello-preview > index.html && python3 -m http.server 8000';

/** Desktop: typed into VS Code's integrated terminal. */
async function inVsCodeTerminal(vscode: Page) {
  await expect(vscode.locator('.monaco-workbench')).toBeVisible({ timeout: 60_000 });
  await expect(vscode.locator('.explorer-folders-view, .pane-header[aria-label*="workspace" i]').first()).toBeVisible({ timeout: 60_000 });
  await vscode.keyboard.press('Control+Backquote');
  const terminal = vscode.locator('.terminal-wrapper .xterm, .xterm').first();
  await expect(terminal).toBeVisible({ timeout: 30_000 });
  await terminal.click();
  await vscode.keyboard.type(COMMANDS);
  await vscode.keyboard.press('Enter');
}

/** Phone: JupyterLab's terminal, driven through its own API (the same terminal the Terminal
 * launcher opens: a shell in the sandbox over a WebSocket through the gateway). */
async function inJupyterTerminal(lab: Page) {
  await expect(lab).toHaveURL(/\/lab/, { timeout: 30_000 });
  const ran = await lab.evaluate(async (commands) => {
    const xsrf = document.cookie.split('; ').find((c) => c.startsWith('_xsrf='))?.slice(6) ?? '';
    const res = await fetch('/api/terminals', { method: 'POST', headers: { 'X-XSRFToken': xsrf } });
    const { name } = await res.json();
    const ws = new WebSocket(`${location.origin.replace('http', 'ws')}/terminals/websocket/${name}`);
    await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
    ws.send(JSON.stringify(['stdin', commands + '\r']));
    // Keep the page's socket open: the server runs in this terminal.
    (window as any).keepTerminal = ws;
    return name;
  }, COMMANDS);
  expect(ran).toBeTruthy();
}

async function card(page: Page, name: string) {
  return page.locator(`[data-testid=workspace][data-name="${name}"]`);
}

test.describe('port previews', () => {
  test.setTimeout(240_000);

  test('a server started in the workspace opens for its owner, others only once shared', async ({ page, browser, isMobile }, testInfo) => {
    const user = await registerUser(page);
    const ws = 'web';
    await createWorkspace(page, ws, isMobile ? 'jupyter-python' : 'vscode-python');
    const ide = await open(page, ws);
    await expect(ide).toHaveURL(new RegExp(`^${wsOrigin(user, ws)}/`), { timeout: 30_000 });
    if (isMobile) {
      await inJupyterTerminal(ide);
    } else {
      await inVsCodeTerminal(ide);
    }

    // The card lists the port by itself (pip and the venv take a while on first use).
    const c = await card(page, ws);
    const p8000 = c.locator('.port[data-port="8000"]');
    await expect(p8000).toBeVisible({ timeout: 120_000 });
    await expect(p8000).toHaveAttribute('data-sharing', 'private');

    // The owner opens it through the token exchange.
    const [preview] = await Promise.all([
      page.context().waitForEvent('page'),
      p8000.locator('[data-action=open-port]').click(),
    ]);
    await expect(preview).toHaveURL(`${previewOrigin(user, ws, 8000)}/`, { timeout: 30_000 });
    await expect(preview.locator('body')).toContainText('hello-preview');
    const version = await preview.evaluate(async () => (await fetch('/pip-ok.txt')).text());
    expect(version).toMatch(/^1\.\d+\.\d+$/);

    // Another signed-in user gets nothing of it: sent to their own list.
    const other = await newUser(browser);
    // From a blank page: the hydrated dashboard's own navigation must not race this one.
    await other.goto('about:blank');
    await other.goto(`${previewOrigin(user, ws, 8000)}/`);
    await expect(other).toHaveURL(/\/workspaces$/);
    await expect(other.locator('body')).not.toContainText('hello-preview');

    // Shared publicly (shown on the card): anyone, even signed out.
    await p8000.locator('button[data-share=public]').click();
    await expect(p8000).toHaveAttribute('data-sharing', 'public');
    await expect(p8000.getByTestId('shared')).toContainText('public');
    // What the card looks like with its figures and a shared port (for the docs and reviews).
    await expect(c.getByTestId('usage')).toContainText('Memory');
    await page.bringToFront();
    await c.screenshot({ path: path.join(__dirname, '..', 'screenshots', testInfo.project.name, 'workspace-card.png') });
    const stranger = await (await browser.newContext()).newPage();
    await stranger.goto(`${previewOrigin(user, ws, 8000)}/`);
    await expect(stranger.locator('body')).toContainText('hello-preview');
    await other.goto(`${previewOrigin(user, ws, 8000)}/`);
    await expect(other.locator('body')).toContainText('hello-preview');

    // Revoked: at once.
    await p8000.locator('button[data-share=private]').click();
    await expect(p8000).toHaveAttribute('data-sharing', 'private');
    await stranger.goto(`${previewOrigin(user, ws, 8000)}/`);
    await expect(stranger).toHaveURL(/\/login/);
    await ide.close();
  });
});

async function newUser(browser: Browser): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await registerUser(page);
  return page;
}
