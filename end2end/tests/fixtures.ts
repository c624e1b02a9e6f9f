import { test as base, expect, Page } from '@playwright/test';
import { randomBytes } from 'node:crypto';

/** Each test is its own client address (documentation range), so rate limits don't collide. */
export const test = base.extend({
  context: async ({ context }, use) => {
    const ip = `2001:db8::${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}`;
    await context.setExtraHTTPHeaders({ 'x-forwarded-for': ip });
    await use(context);
  },
});
export { expect };

/** A fresh valid user name: a letter, then lowercase letters and digits. */
export function uniqueName(prefix = 'u'): string {
  return (prefix + randomBytes(6).toString('hex')).slice(0, 20);
}

export const PASSWORD = 'correct horse battery';

/** Waits until the WASM has hydrated the page. */
export async function hydrated(page: Page) {
  await page.locator('.app[data-hydrated="true"]').waitFor({ state: 'attached' });
}

export async function fillRegister(page: Page, name: string, password = PASSWORD) {
  await page.locator('#register-form #username').fill(name);
  await page.locator('#register-form #password').fill(password);
  await page.locator('#register-form button[type=submit]').click();
}

export async function fillLogin(page: Page, name: string, password = PASSWORD) {
  await page.locator('#login-form #username').fill(name);
  await page.locator('#login-form #password').fill(password);
  await page.locator('#login-form button[type=submit]').click();
}

/** Registers through the UI (hydrated) and waits for the workspace list. */
export async function registerUser(page: Page, name = uniqueName()): Promise<string> {
  await page.goto('/register');
  await hydrated(page);
  await fillRegister(page, name);
  await expect(page).toHaveURL(/\/workspaces$/);
  await expect(page.getByTestId('nav-user')).toContainText(name);
  return name;
}

export async function logout(page: Page) {
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);
}

/** The server's port: the one under test, or that of QINGTING_E2E_URL when it names a server. */
export const port = Number(
  process.env.QINGTING_E2E_URL ? new URL(process.env.QINGTING_E2E_URL).port || 80 : (process.env.QINGTING_E2E_PORT ?? 3100),
);

/** The origin of a workspace's own host. */
export const wsOrigin = (user: string, ws: string) => `http://${user}-${ws}.localhost:${port}`;

/** Creates a workspace from the dashboard (going there unless already on it) and waits until
 * the list shows it running. */
export async function createWorkspace(page: Page, name: string, template: string) {
  if (new URL(page.url()).pathname !== '/workspaces') {
    await page.goto('/workspaces');
  }
  await hydrated(page);
  await page.locator('#ws-name').fill(name);
  await page.locator('#ws-template').selectOption(template);
  await page.locator('#create-form button[type=submit]').click();
  const card = page.locator(`[data-testid=workspace][data-name="${name}"]`);
  await expect(card).toBeVisible();
  await expect(card).toHaveAttribute('data-state', 'running', { timeout: 90_000 });
  return card;
}

/** Clicks Open on a workspace card and returns the IDE's tab. */
export async function open(page: Page, name: string): Promise<Page> {
  const card = page.locator(`[data-testid=workspace][data-name="${name}"]`);
  const [tab] = await Promise.all([
    page.context().waitForEvent('page'),
    card.locator('[data-action=open]').click(),
  ]);
  return tab;
}
