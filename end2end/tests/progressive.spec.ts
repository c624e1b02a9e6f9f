import { test, expect, uniqueName, PASSWORD, hydrated, registerUser } from './fixtures';

test.describe('without JavaScript (before hydration)', () => {
  test.use({ javaScriptEnabled: false });

  test('register, log out and log in with plain form posts', async ({ page }) => {
    const name = uniqueName('nojs');
    await page.goto('/register');
    await page.locator('#username').fill(name);
    await page.locator('#password').fill(PASSWORD);
    await page.locator('#register-form button[type=submit]').click();
    await expect(page).toHaveURL(/\/workspaces$/);
    await expect(page.getByTestId('nav-user')).toContainText(name);

    await page.getByRole('button', { name: 'Log out' }).click();
    await expect(page).toHaveURL(/\/login/);

    // A server-side error comes back into the form.
    await page.locator('#username').fill(name);
    await page.locator('#password').fill('wrong password');
    await page.locator('#login-form button[type=submit]').click();
    await expect(page.getByRole('alert')).toHaveText('Wrong user name or password.');

    await page.locator('#username').fill(name);
    await page.locator('#password').fill(PASSWORD);
    await page.locator('#login-form button[type=submit]').click();
    await expect(page).toHaveURL(/\/workspaces$/);
  });

  test('protected page redirects to login and back', async ({ page }) => {
    const name = uniqueName('nojs');
    await page.goto('/register');
    await page.locator('#username').fill(name);
    await page.locator('#password').fill(PASSWORD);
    await page.locator('#register-form button[type=submit]').click();
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.goto('/workspaces?from=nojs');
    await expect(page).toHaveURL(/\/login\?next=%2Fworkspaces%3Ffrom%3Dnojs$/);
    await page.locator('#username').fill(name);
    await page.locator('#password').fill(PASSWORD);
    await page.locator('#login-form button[type=submit]').click();
    await expect(page).toHaveURL(/\/workspaces\?from=nojs$/);
  });
});

test.describe('after hydration', () => {
  test('the password Show toggle works', async ({ page }) => {
    await page.goto('/login');
    await hydrated(page);
    const input = page.locator('#password');
    await expect(input).toHaveAttribute('type', 'password');
    await page.getByRole('button', { name: 'Show' }).click();
    await expect(input).toHaveAttribute('type', 'text');
    await page.getByRole('button', { name: 'Hide' }).click();
    await expect(input).toHaveAttribute('type', 'password');
  });

  test('signing in navigates without a page reload', async ({ page }) => {
    const name = await registerUser(page);
    await page.getByRole('button', { name: 'Log out' }).click();
    await expect(page).toHaveURL(/\/login$/);
    await page.evaluate(() => ((window as unknown as { __marker: number }).__marker = 42));
    await page.locator('#username').fill(name);
    await page.locator('#password').fill(PASSWORD);
    await page.locator('#login-form button[type=submit]').click();
    await expect(page).toHaveURL(/\/workspaces$/);
    await expect(page.getByTestId('nav-user')).toContainText(name);
    // The same document is still loaded: the form worked through the WASM, not a reload.
    expect(await page.evaluate(() => (window as unknown as { __marker?: number }).__marker)).toBe(42);
  });
});
