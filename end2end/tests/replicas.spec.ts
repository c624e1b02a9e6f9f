import { test, expect, hydrated, registerUser } from './fixtures';

// Only in the replica run (playwright.replicas.config.ts): two replicas behind a round-robin
// proxy, so consecutive requests, and each tab's event stream, land on different replicas.
test.skip(!process.env.QINGTING_E2E_REPLICAS_DB, 'needs the replica run');

test('two replicas answer in turn', async ({ request }) => {
  const ids = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const health = await (await request.get('/healthz')).json();
    ids.add(health.replica.id);
    expect(health.replica.change_feed).toBe('postgres notify');
  }
  expect(ids.size).toBe(2);
});

test('a change made in one tab shows live in another, whichever replica each talks to', async ({ page, context }) => {
  test.setTimeout(90_000);
  await registerUser(page);
  const other = await context.newPage();
  await other.goto('/workspaces');
  await hydrated(other);
  await expect(other.locator('[data-testid=workspace]')).toHaveCount(0);

  await page.locator('#ws-name').fill('shared');
  await page.locator('#ws-template').selectOption('jupyter-python');
  await page.locator('#create-form button[type=submit]').click();
  const card = other.locator('[data-testid=workspace][data-name="shared"]');
  await expect(card).toBeVisible({ timeout: 5_000 });
  await expect(card).toHaveAttribute('data-state', 'running', { timeout: 30_000 });

  await card.locator('button[data-action=stop]').click();
  await expect(page.locator('[data-testid=workspace][data-name="shared"]')).toHaveAttribute('data-state', 'stopped', {
    timeout: 30_000,
  });
  await card.locator('summary[data-action=delete]').click();
  await card.locator('button[data-action=delete]').click();
  await expect(page.locator('[data-testid=workspace]')).toHaveCount(0, { timeout: 30_000 });
});
