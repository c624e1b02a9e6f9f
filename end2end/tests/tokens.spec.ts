import { test, expect, hydrated, registerUser } from './fixtures';

test('an API token is made on the settings page, shown once, works, and fails at once when revoked', async ({ page, playwright, baseURL }) => {
  const name = await registerUser(page);
  await page.goto('/settings/tokens');
  await hydrated(page);
  await page.locator('#token-name').fill('laptop CLI');
  await page.locator('#token-access').selectOption('read');
  await page.locator('#token-form button[type=submit]').click();
  const secret = await page.locator('#new-token input').inputValue();
  expect(secret).toMatch(/^qt_[A-Za-z0-9]{43}$/);
  const item = page.locator('#tokens [data-name="laptop CLI"]');
  await expect(item).toContainText('read');
  await expect(item).toContainText('never used');
  await expect(item).toContainText(secret.slice(0, 9));

  // A script with the token (and no cookie) reads; it may not act with a read-only token.
  const api = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { authorization: `Bearer ${secret}` } });
  const me = await api.get('/api/v1/me');
  expect(me.status()).toBe(200);
  expect((await me.json()).username).toBe(name);
  const act = await api.post('/api/v1/workspaces', { data: { name: 'x', template: 'jupyter-python' } });
  expect(act.status()).toBe(403);
  expect((await act.json()).code).toBe('forbidden');

  // After a reload the secret is nowhere on the page; the token is listed as used.
  await page.reload();
  await hydrated(page);
  await expect(page.locator('#new-token')).toHaveCount(0);
  expect(await page.content()).not.toContain(secret);
  await expect(item).toContainText('used today');
  await item.locator('button', { hasText: 'Revoke' }).click();
  await expect(page.locator('#no-tokens')).toBeVisible();
  const after = await api.get('/api/v1/me');
  expect(after.status()).toBe(401);
  expect((await after.json()).code).toBe('unauthorized');
  await api.dispose();
});
