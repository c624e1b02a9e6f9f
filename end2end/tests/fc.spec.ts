import * as path from 'node:path';
import { test, expect, hydrated, registerUser, uniqueName, PASSWORD } from './fixtures';

// The same dashboard on the second test server, whose workspaces run on Function Compute (the
// in-repo simulator plays FC).
const port = Number(process.env.QINGTING_E2E_PORT ?? 3100) + 3;
test.use({ baseURL: `http://localhost:${port}` });

test('Function Compute runtime: create, stop, start and delete from the dashboard', async ({ page }, testInfo) => {
  test.setTimeout(90_000);
  const user = await registerUser(page);
  await page.goto('/workspaces');
  await hydrated(page);
  await page.locator('#ws-name').fill('cloud');
  await page.locator('#ws-template').selectOption('jupyter-python');
  await page.locator('#create-form button[type=submit]').click();
  const card = page.locator('[data-testid=workspace][data-name="cloud"]');
  await expect(card).toHaveAttribute('data-state', 'running', { timeout: 30_000 });
  await expect(card.locator('[data-action=open]')).toHaveAttribute('href', `/open/${user}/cloud`);
  await expect(page.locator('#ws-name')).toHaveValue('');
  // The list with a running workspace, for review; nothing overflows sideways on a phone.
  const shot = path.join(__dirname, '..', 'screenshots', testInfo.project.name, 'workspaces-running.png');
  await page.screenshot({ path: shot, fullPage: true });
  await testInfo.attach('workspaces-running', { path: shot, contentType: 'image/png' });
  expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);

  await card.locator('button[data-action=stop]').click();
  await expect(card).toHaveAttribute('data-state', 'stopped', { timeout: 30_000 });
  await card.locator('button[data-action=start]').click();
  await expect(card).toHaveAttribute('data-state', 'running', { timeout: 30_000 });

  await card.locator('summary[data-action=delete]').click();
  await card.locator('button[data-action=delete]').click();
  await expect(page.locator('[data-testid=workspace]')).toHaveCount(0, { timeout: 30_000 });
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('create and stop a workspace with plain form posts', async ({ page }) => {
    test.setTimeout(60_000);
    const name = uniqueName('nojs');
    await page.goto('/register');
    await page.locator('#username').fill(name);
    await page.locator('#password').fill(PASSWORD);
    await page.locator('#register-form button[type=submit]').click();
    await expect(page).toHaveURL(/\/workspaces$/);
    await page.locator('#ws-name').fill('plain');
    await page.locator('#ws-template').selectOption('vscode-node');
    await page.locator('#create-form button[type=submit]').click();
    await expect(page).toHaveURL(/\/workspaces$/);
    const card = page.locator('[data-testid=workspace][data-name="plain"]');
    // No live updates without JavaScript: reload until it runs.
    await expect(async () => {
      await page.reload();
      await expect(card).toHaveAttribute('data-state', 'running', { timeout: 1_000 });
    }).toPass({ timeout: 30_000 });
    await card.locator('button[data-action=stop]').click();
    await expect(async () => {
      await page.reload();
      await expect(card).toHaveAttribute('data-state', 'stopped', { timeout: 1_000 });
    }).toPass({ timeout: 30_000 });
  });
});
