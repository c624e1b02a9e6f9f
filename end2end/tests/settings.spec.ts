import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { test, expect, hydrated, registerUser, fillLogin, PASSWORD, uniqueName } from './fixtures';

const fixture = (name: string) => path.join(__dirname, '..', 'fixtures', name);

test('edit the profile; free text is shown escaped', async ({ page }) => {
  const name = await registerUser(page);
  await page.goto('/settings/profile');
  await hydrated(page);
  await page.locator('#display_name').fill('<b>Ada</b> & co');
  await page.locator('#email').fill('not-an-email');
  await page.locator('#bio').fill('Hello\n<script>window.__pwned = 1</script>');
  await page.getByRole('button', { name: 'Save profile' }).click();
  await expect(page.getByRole('alert')).toContainText('does not look like an e-mail');
  await page.locator('#email').fill('ada@example.com');
  await page.getByRole('button', { name: 'Save profile' }).click();
  await expect(page.getByRole('status')).toHaveText('Profile saved.');
  // The nav shows the display name, as text.
  await expect(page.getByTestId('nav-user')).toContainText('<b>Ada</b> & co');
  await page.reload();
  await expect(page.locator('#email')).toHaveValue('ada@example.com');
  await expect(page.locator('#bio')).toHaveValue('Hello\n<script>window.__pwned = 1</script>');
  expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  expect(await page.locator('b', { hasText: 'Ada' }).count()).toBe(0);
  // The user name is editable, with the same grammar.
  await page.locator('#username').fill('Bad Name');
  await page.getByRole('button', { name: 'Save profile' }).click();
  await expect(page.getByRole('alert')).toContainText('lowercase letter');
  const renamed = uniqueName('re');
  await page.locator('#username').fill(renamed);
  await page.getByRole('button', { name: 'Save profile' }).click();
  await expect(page.getByRole('status')).toHaveText('Profile saved.');
  await expect(page.getByTestId('nav-user')).toContainText(renamed);
  expect(renamed).not.toBe(name);
});

test('change the password: this session stays, the other is signed out', async ({ page, browser }) => {
  const name = await registerUser(page);
  // A second device: its own browser context (own cookies).
  const other = await browser.newContext();
  const otherPage = await other.newPage();
  await otherPage.goto('/login');
  await hydrated(otherPage);
  await fillLogin(otherPage, name);
  await expect(otherPage).toHaveURL(/\/workspaces$/);

  await page.goto('/settings/security');
  await hydrated(page);
  await page.locator('#current_password').fill('not my password');
  await page.locator('#new_password').fill('a new password 2');
  await page.getByRole('button', { name: 'Save password' }).click();
  await expect(page.getByRole('alert')).toHaveText('The current password is wrong.');
  await page.locator('#current_password').fill(PASSWORD);
  await page.locator('#new_password').fill('short');
  await page.getByRole('button', { name: 'Save password' }).click();
  await expect(page.getByRole('alert')).toContainText('at least 8 characters');
  await page.locator('#new_password').fill('a new password 2');
  await page.getByRole('button', { name: 'Save password' }).click();
  await expect(page.getByRole('status')).toContainText('Password changed');

  // This session continues.
  await page.goto('/workspaces');
  await expect(page.getByTestId('nav-user')).toContainText(name);
  // The other device is signed out: its open dashboard goes to the sign-in page by itself
  // (waited for first: a navigation of the test's own would race with it and be aborted), and
  // a new visit is sent there too.
  await otherPage.waitForURL(/\/login\?next=/, { timeout: 5_000, waitUntil: 'commit' });
  await otherPage.goto('/workspaces');
  await expect(otherPage).toHaveURL(/\/login\?next=/);
  // The new password works, the old one does not.
  await hydrated(otherPage);
  await fillLogin(otherPage, name, PASSWORD);
  await expect(otherPage.getByRole('alert')).toHaveText('Wrong user name or password.');
  await fillLogin(otherPage, name, 'a new password 2');
  await expect(otherPage).toHaveURL(/\/workspaces$/);
  await other.close();
});

test('upload an avatar; bad files are refused and keep the old one', async ({ page }) => {
  await registerUser(page);
  await page.goto('/settings/profile');
  await hydrated(page);
  await page.locator('#avatar').setInputFiles(fixture('avatar.png'));
  await page.getByRole('button', { name: 'Upload' }).click();
  await expect(page.getByTestId('outcome')).toHaveText('Your avatar was updated.');
  const img = page.getByTestId('avatar-image');
  await expect(img).toBeVisible();
  const src = await img.getAttribute('src');
  expect(src).toMatch(/^\/avatars\/[0-9a-f]{32}\.png$/);
  // Once loaded (from S3 through another replica it takes a moment).
  await expect.poll(() => img.evaluate((el: HTMLImageElement) => (el.complete ? el.naturalWidth : -1))).toBe(256);

  const refusals: Array<[string | { name: string; mimeType: string; buffer: Buffer }, string]> = [
    [fixture('notes.txt'), 'Choose a PNG, JPEG, WebP or GIF image.'],
    [fixture('liar.png'), 'could not be read'],
    [fixture('truncated.png'), 'could not be read'],
    [{ name: 'big.png', mimeType: 'image/png', buffer: Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), randomBytes(3 * 1024 * 1024)]) }, 'too large'],
  ];
  for (const [file, message] of refusals) {
    await page.goto('/settings/profile');
    await hydrated(page);
    await page.locator('#avatar').setInputFiles(file);
    await page.getByRole('button', { name: 'Upload' }).click();
    await expect(page.getByTestId('outcome')).toContainText(message);
    await expect(page.getByTestId('avatar-image')).toHaveAttribute('src', src!);
  }
  // Removing it goes back to the letter placeholder.
  await page.getByRole('button', { name: 'Remove avatar' }).click();
  await expect(page.getByTestId('avatar-image')).toHaveCount(0);
});

/** Completes the fake GitHub consent page as GitHub user (login, id). */
async function consent(page: import('@playwright/test').Page, login: string, id: number) {
  await expect(page.getByRole('heading', { name: 'Authorize QingTing Studio' })).toBeVisible();
  await page.locator('#login').fill(login);
  await page.locator('#user_id').fill(String(id));
  await page.getByRole('button', { name: 'Authorize' }).click();
}

const githubId = () => 10_000_000 + Math.floor(Math.random() * 80_000_000);

test('sign in with GitHub creates an account; linking, refusals and unlinking', async ({ page, browser }) => {
  const login = `Octo-${randomBytes(3).toString('hex')}`;
  const id = githubId();
  await page.goto('/login');
  await hydrated(page);
  await page.getByRole('link', { name: 'Sign in with GitHub' }).click();
  await consent(page, login, id);
  await expect(page).toHaveURL(/\/workspaces$/);
  const derived = login.toLowerCase().replace('-', '');
  await expect(page.getByTestId('nav-user')).toContainText(derived);

  // A GitHub-only account cannot unlink its only way in.
  await page.goto('/settings/profile');
  await hydrated(page);
  await expect(page.getByTestId('github-login')).toHaveText(login);
  await page.getByRole('button', { name: 'Unlink GitHub' }).click();
  await expect(page.getByRole('alert')).toContainText('Set a password first');

  // Someone else cannot link the same GitHub account.
  const other = await browser.newContext({ extraHTTPHeaders: { 'x-forwarded-for': '2001:db8::77' } });
  const otherPage = await other.newPage();
  await registerUser(otherPage);
  await otherPage.goto('/settings/profile');
  await otherPage.getByRole('button', { name: 'Link GitHub' }).click();
  await consent(otherPage, login, id);
  await expect(otherPage).toHaveURL(/\/settings\/profile\?github=taken$/);
  await expect(otherPage.getByTestId('outcome')).toContainText('already linked to another');
  // Their own GitHub account links fine, and unlinks (they have a password).
  await otherPage.getByRole('button', { name: 'Link GitHub' }).click();
  await consent(otherPage, 'their-own', githubId());
  await expect(otherPage.getByTestId('outcome')).toHaveText('GitHub is now linked to your account.');
  await expect(otherPage.getByTestId('github-login')).toHaveText('their-own');
  await hydrated(otherPage);
  await otherPage.getByRole('button', { name: 'Unlink GitHub' }).click();
  await expect(otherPage.getByRole('button', { name: 'Link GitHub' })).toBeVisible();
  await other.close();

  // Signing in again with the same GitHub id lands in the same account.
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.getByRole('link', { name: 'Sign in with GitHub' }).click();
  await consent(page, login, id);
  await expect(page.getByTestId('nav-user')).toContainText(derived);
});

test('a GitHub callback with a forged state is refused', async ({ page }) => {
  await page.goto('/login');
  await hydrated(page);
  await page.getByRole('link', { name: 'Sign in with GitHub' }).click();
  await expect(page.getByRole('heading', { name: 'Authorize QingTing Studio' })).toBeVisible();
  // Instead of consenting, arrive at the callback with someone else's state.
  await page.goto('/auth/github/callback?code=stolen&state=forged');
  await expect(page).toHaveURL(/\/login\?github=state_mismatch$/);
  await expect(page.getByTestId('outcome')).toContainText('could not be verified');
  await expect(page.getByRole('link', { name: 'Sign in', exact: true })).toBeVisible();
});

test('delete the account with the password', async ({ page }) => {
  const name = await registerUser(page);
  await page.goto('/settings/security');
  await hydrated(page);
  await page.locator('#delete_password').fill('wrong password');
  await page.getByRole('button', { name: 'Delete my account' }).click();
  await expect(page.getByRole('alert')).toHaveText('The current password is wrong.');
  await page.locator('#delete_password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Delete my account' }).click();
  await expect(page).toHaveURL(/\/login\?account=deleted$/);
  await expect(page.getByTestId('outcome')).toHaveText('Your account was deleted.');
  await hydrated(page);
  await fillLogin(page, name);
  await expect(page.getByRole('alert')).toHaveText('Wrong user name or password.');
});

test('a GitHub-only account is deleted after confirming with GitHub', async ({ page }) => {
  const id = githubId();
  const login = `gone${randomBytes(3).toString('hex')}`;
  await page.goto('/login');
  await page.getByRole('link', { name: 'Sign in with GitHub' }).click();
  await consent(page, login, id);
  await expect(page).toHaveURL(/\/workspaces$/);
  // A link from anywhere (a GET) starts nothing.
  await page.goto('/auth/github/start?mode=delete');
  await expect(page).toHaveURL(/\/settings\/security\?github=use_button$/);
  await page.getByRole('button', { name: 'Confirm with GitHub and delete' }).click();
  await consent(page, login, id);
  // GitHub's answer only leads to our confirmation page; the account is still there.
  await expect(page).toHaveURL(/\/settings\/delete-account$/);
  await expect(page.getByTestId('delete-confirm')).toContainText(login.toLowerCase());
  await expect(page.getByTestId('nav-user')).toBeVisible();
  await page.getByRole('button', { name: 'Delete my account' }).click();
  await expect(page).toHaveURL(/\/login\?account=deleted$/);
  // Signing in with that GitHub id again makes a brand-new account (the old one is gone).
  await page.getByRole('link', { name: 'Sign in with GitHub' }).click();
  await consent(page, login, id);
  await page.goto('/settings/profile');
  await expect(page.getByTestId('github-login')).toHaveText(login);
});
