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
