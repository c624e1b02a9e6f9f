import { test, expect, hydrated, registerUser } from './fixtures';

// The same dashboard on the second test server, whose workspaces run on Function Compute (the
// in-repo simulator plays FC).
const port = Number(process.env.QINGTING_E2E_PORT ?? 3100) + 3;
test.use({ baseURL: `http://localhost:${port}` });

test('Function Compute runtime: create, stop, start and delete from the dashboard', async ({ page }) => {
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

  await card.locator('button[data-action=stop]').click();
  await expect(card).toHaveAttribute('data-state', 'stopped', { timeout: 30_000 });
  await card.locator('button[data-action=start]').click();
  await expect(card).toHaveAttribute('data-state', 'running', { timeout: 30_000 });

  await card.locator('summary[data-action=delete]').click();
  await card.locator('button[data-action=delete]').click();
  await expect(page.locator('[data-testid=workspace]')).toHaveCount(0, { timeout: 30_000 });
});
