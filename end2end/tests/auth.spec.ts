import { test, expect, uniqueName, PASSWORD, hydrated, fillLogin, fillRegister, registerUser, logout } from './fixtures';

test('register, see the dashboard, log out and log in again', async ({ page, context }) => {
  const name = await registerUser(page);
  await expect(page.getByTestId('welcome')).toContainText(name);
  await expect(page.getByTestId('workspace-list')).toBeVisible();

  // The session cookie is host-only, HttpOnly and SameSite=Lax.
  const cookie = (await context.cookies()).find((c) => c.name === 'qingting_session');
  expect(cookie).toBeDefined();
  expect(cookie!.httpOnly).toBe(true);
  expect(cookie!.sameSite).toBe('Lax');
  expect(cookie!.domain).toBe('localhost');

  await logout(page);
  await expect(page.getByRole('link', { name: 'Sign in', exact: true })).toBeVisible();
  await page.goto('/workspaces');
  await expect(page).toHaveURL(/\/login\?next=%2Fworkspaces$/);

  await hydrated(page);
  await fillLogin(page, name);
  await expect(page).toHaveURL(/\/workspaces$/);
  await expect(page.getByTestId('nav-user')).toContainText(name);
});

test('wrong password and unknown user get the same message', async ({ page }) => {
  const name = await registerUser(page);
  await logout(page);
  await hydrated(page);
  await fillLogin(page, name, 'not the password');
  const alert = page.getByRole('alert');
  await expect(alert).toHaveText('Wrong user name or password.');
  await fillLogin(page, uniqueName('nobody'), 'not the password');
  await expect(alert).toHaveText('Wrong user name or password.');
  await expect(page).toHaveURL(/\/login/);
});

test('duplicate name, weak password and bad name are refused clearly', async ({ page, browser }) => {
  const name = await registerUser(page);
  const other = await browser.newPage();
  await other.goto('/register');
  await hydrated(other);
  await fillRegister(other, name);
  await expect(other.getByRole('alert')).toHaveText('That user name is taken.');
  await fillRegister(other, uniqueName(), 'short');
  await expect(other.getByRole('alert')).toContainText('at least 8 characters');
  await fillRegister(other, 'Not-Valid', PASSWORD);
  await expect(other.getByRole('alert')).toContainText('lowercase letter');
  await expect(other).toHaveURL(/\/register$/);
  // The grammar is shown before anyone gets it wrong.
  await expect(other.locator('#username-hint')).toContainText('lowercase letter');
  await other.close();
});

test('a protected page sends you to login and back after it', async ({ page }) => {
  const name = await registerUser(page);
  await logout(page);
  await page.goto('/workspaces?tab=all');
  await expect(page).toHaveURL(/\/login\?next=%2Fworkspaces%3Ftab%3Dall$/);
  await hydrated(page);
  await fillLogin(page, name);
  await expect(page).toHaveURL(/\/workspaces\?tab=all$/);
  await expect(page.getByTestId('nav-user')).toContainText(name);
});

for (const evil of ['//evil.example', 'https:evil.example', '/\\evil.example', 'https://evil.example/']) {
  test(`next pointing off-site is ignored: ${evil}`, async ({ page }) => {
    const name = await registerUser(page);
    await logout(page);
    await page.goto(`/login?next=${encodeURIComponent(evil)}`);
    await hydrated(page);
    await fillLogin(page, name);
    await expect(page).toHaveURL(/^http:\/\/localhost:\d+\/workspaces$/);
  });
}

test('too many sign-in attempts are refused with a form error', async ({ page }) => {
  const name = uniqueName();
  await page.goto('/login');
  await hydrated(page);
  // The e2e server allows 6 attempts per minute per address.
  for (let i = 0; i < 6; i++) {
    await fillLogin(page, name, `guess number ${i}`);
    await expect(page.getByRole('alert')).toHaveText('Wrong user name or password.');
    await expect(page.locator('#login-form button[type=submit]')).toBeEnabled();
  }
  await fillLogin(page, name, 'one more guess');
  await expect(page.getByRole('alert')).toContainText('Too many attempts. Try again in');
});
