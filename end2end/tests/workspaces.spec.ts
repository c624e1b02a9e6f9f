import { Page, Request } from '@playwright/test';
import { test, expect, hydrated, registerUser, fillLogin, wsOrigin, createWorkspace, open } from './fixtures';

async function runCell(lab: Page, code: string) {
  const cell = lab.locator('.jp-Notebook .jp-Cell').last().locator('.cm-content');
  await cell.click();
  await lab.keyboard.type(code);
  await lab.keyboard.press('Shift+Enter');
}

test.describe('real IDEs through the gateway', () => {
  test.skip(({ isMobile }) => isMobile, 'the IDEs themselves are desktop apps; the phone runs the dashboard tests');
  test.setTimeout(180_000);

  test('Jupyter: run 6*7 in a notebook; a file written there survives stop and start', async ({ page }) => {
    const user = await registerUser(page);
    await createWorkspace(page, 'nb', 'jupyter-python');
    const lab = await open(page, 'nb');
    await expect(lab).toHaveURL(new RegExp(`^${wsOrigin(user, 'nb')}/lab`), { timeout: 30_000 });
    // A new notebook on the Python kernel (its WebSocket goes through the gateway).
    await lab.locator('.jp-LauncherCard[data-category="Notebook"]').first().click({ timeout: 60_000 });
    await expect(lab.locator('.jp-Notebook')).toBeVisible();
    // The kernel answers over its WebSocket (through the gateway) before we run anything.
    await expect(lab.locator('#jp-main-statusbar')).toContainText('Idle', { timeout: 60_000 });
    await runCell(lab, 'print(6*7)');
    await expect(lab.locator('.jp-OutputArea-output').first()).toHaveText('42', { timeout: 60_000 });
    await runCell(lab, "open('kept.txt', 'w').write('still here')");
    await expect(lab.locator('.jp-OutputArea-output').nth(1)).toHaveText('10', { timeout: 30_000 });
    await lab.close();

    // Stop, start: the file is still there.
    const card = page.locator('[data-testid=workspace][data-name="nb"]');
    await card.locator('button[data-action=stop]').click();
    await expect(card).toHaveAttribute('data-state', 'stopped', { timeout: 30_000 });
    await card.locator('button[data-action=start]').click();
    await expect(card).toHaveAttribute('data-state', 'running', { timeout: 60_000 });
    const again = await open(page, 'nb');
    await expect(again).toHaveURL(new RegExp(`^${wsOrigin(user, 'nb')}/lab`), { timeout: 30_000 });
    await expect(again.locator('.jp-DirListing-item[title^="Name: kept.txt"], .jp-DirListing-item:has-text("kept.txt")').first()).toBeVisible({ timeout: 30_000 });
    const content = await again.evaluate(async () => (await (await fetch('/api/contents/kept.txt?content=1')).json()).content);
    expect(content).toBe('still here');
  });

  test('Jupyter: the terminal runs a shell in the workspace, with the internet', async ({ page }) => {
    const user = await registerUser(page);
    await createWorkspace(page, 'term', 'jupyter-python');
    const lab = await open(page, 'term');
    await expect(lab).toHaveURL(new RegExp(`^${wsOrigin(user, 'term')}/lab`), { timeout: 30_000 });
    await lab.locator('.jp-LauncherCard[data-category="Other"]').filter({ hasText: 'Terminal' }).first().click({ timeout: 60_000 });
    const terminal = lab.locator('.jp-Terminal .xterm').first();
    await expect(terminal).toBeVisible({ timeout: 30_000 });
    await terminal.click();
    // A name resolved and a page fetched from the package index, from the workspace's shell.
    await lab.keyboard.type(
      'python3 -c "import urllib.request as u; print(u.urlopen(\'https://pypi.org/simple/six/\').status)" > from-terminal.txt; whoami >> from-terminal.txt',
    );
    await lab.keyboard.press('Enter');
    await expect
      .poll(async () => lab.evaluate(async () => {
        const r = await fetch('/api/contents/from-terminal.txt?content=1');
        return r.ok ? (await r.json()).content : '';
      }), { timeout: 60_000 })
      .toMatch(/^200\n/);
  });

  test('VS Code: the workbench loads with the workspace folder in the explorer', async ({ page }) => {
    const user = await registerUser(page);
    await createWorkspace(page, 'code', 'vscode-python');
    const vscode = await open(page, 'code');
    await expect(vscode).toHaveURL(new RegExp(`^${wsOrigin(user, 'code')}/`), { timeout: 30_000 });
    await expect(vscode.locator('.monaco-workbench')).toBeVisible({ timeout: 60_000 });
    // The explorer lists the folder over the remote connection (a WebSocket through the gateway).
    await expect(vscode.locator('.explorer-folders-view, .pane-header[aria-label*="workspace" i]').first()).toBeVisible({ timeout: 60_000 });
    await expect(vscode.getByText(/reconnect|cannot reconnect/i)).toHaveCount(0);
  });
});

test.describe('workspace access', () => {
  test.setTimeout(120_000);

  test('anonymous visit goes through login and back; another user lands on their own list', async ({ page, browser }) => {
    const owner = await registerUser(page);
    await createWorkspace(page, 'shared', 'jupyter-python');
    const target = `${wsOrigin(owner, 'shared')}/lab`;

    // The dashboard session cookie was never sent to (nor stored for) the workspace host.
    const stranger = await browser.newContext();
    const visitor = await stranger.newPage();
    const sentToWorkspace: string[] = [];
    const recordCookies = async (req: Request) => {
      if (new URL(req.url()).hostname === `${owner}-shared.localhost`) {
        sentToWorkspace.push((await req.allHeaders().catch(() => ({}) as Record<string, string>))['cookie'] ?? '');
      }
    };
    visitor.on('request', recordCookies);
    await visitor.goto(target);
    await expect(visitor).toHaveURL(/\/login\?next=/);
    await hydrated(visitor);
    await fillLogin(visitor, owner);
    await expect(visitor).toHaveURL(new RegExp(`^${target}`), { timeout: 30_000 });
    await expect(visitor.locator('#jp-main-dock-panel, .jp-LabShell').first()).toBeVisible({ timeout: 60_000 });
    // Every cookie is host-only (no Domain), so the dashboard's stays on the dashboard host.
    const cookies = await stranger.cookies();
    expect(cookies.every((c) => !c.domain.startsWith('.'))).toBe(true);
    const wsCookie = cookies.find((c) => c.name === 'qingting_ws')!;
    expect([wsCookie.domain, wsCookie.httpOnly]).toEqual([`${owner}-shared.localhost`, true]);
    expect(sentToWorkspace.length).toBeGreaterThan(3);
    expect(sentToWorkspace.filter((c) => c.includes('qingting_session'))).toEqual([]);
    visitor.off('request', recordCookies);
    await stranger.close();

    // Someone else: sent to their own workspace list.
    const other = await browser.newContext();
    const otherPage = await other.newPage();
    const otherName = await registerUser(otherPage);
    // From a blank page: the hydrated dashboard's own navigation must not race this one.
    await otherPage.goto('about:blank');
    await otherPage.goto(target);
    await expect(otherPage).toHaveURL(/\/workspaces$/);
    await expect(otherPage.getByTestId('nav-user')).toContainText(otherName);
    await other.close();
  });

  test('a token link handed to someone else asks before it signs them in', async ({ page, browser }) => {
    const owner = await registerUser(page);
    await createWorkspace(page, 'lure', 'jupyter-python');
    // The owner copies the link the dashboard redirects to (with their session) ...
    const res = await page.request.get(`/open/${owner}/lure?next=/lab`, { maxRedirects: 0 });
    expect(res.status()).toBe(302);
    const link = res.headers()['location'];
    expect(link).toContain('/_qingting/auth?token=');
    // ... and sends it to someone, who opens it from a page that is not the dashboard.
    const victim = await browser.newContext();
    const tab = await victim.newPage();
    await tab.goto(link);
    await expect(tab.getByRole('heading', { name: `Open workspace ${owner}/lure?` })).toBeVisible();
    await expect(tab.getByText(/did not come from your own QingTing dashboard/)).toBeVisible();
    // Not signed in to the workspace yet (a round-trip state cookie from the page's own
    // requests may be there; it opens nothing).
    expect((await victim.cookies()).map((c) => c.name)).not.toContain('qingting_ws');
    // Only going on (a POST from the workspace's own page) signs them in.
    await tab.locator('#continue-to-workspace').click();
    await expect(tab).toHaveURL(new RegExp(`^${wsOrigin(owner, 'lure')}/lab`), { timeout: 30_000 });
    expect((await victim.cookies()).map((c) => c.name)).toContain('qingting_ws');
    await victim.close();
  });

  test('dashboard lifecycle: create, refuse a duplicate, stop, start, restart, delete', async ({ page }) => {
    await registerUser(page);
    const card = await createWorkspace(page, 'life', 'jupyter-python');
    // A duplicate name is refused with a clear message, and nothing else changes.
    await page.locator('#ws-name').fill('life');
    await page.locator('#ws-template').selectOption('jupyter-python');
    await page.locator('#create-form button[type=submit]').click();
    await expect(page.locator('#create-form [role=alert]')).toHaveText('You already have a workspace with that name.');
    await expect(page.locator('[data-testid=workspace]')).toHaveCount(1);

    await card.locator('button[data-action=stop]').click();
    await expect(card).toHaveAttribute('data-state', 'stopped', { timeout: 30_000 });
    await card.locator('button[data-action=start]').click();
    await expect(card).toHaveAttribute('data-state', 'running', { timeout: 60_000 });
    await card.locator('button[data-action=restart]').click();
    await expect(card).toHaveAttribute('data-state', /stopping|starting/);
    await expect(card).toHaveAttribute('data-state', 'running', { timeout: 60_000 });

    await card.locator('summary[data-action=delete]').click();
    await card.locator('button[data-action=delete]').click();
    await expect(page.locator('[data-testid=workspace]')).toHaveCount(0, { timeout: 30_000 });
    await expect(page.getByText('No workspaces yet')).toBeVisible();
  });
});
