import * as path from 'node:path';
import { test, expect, hydrated, registerUser } from './fixtures';

// Screenshots of the main pages on every project (desktop and phone), kept in
// end2end/screenshots/<project>/ and attached to the HTML report.
test('main pages', async ({ page }, testInfo) => {
  const dir = path.join(__dirname, '..', 'screenshots', testInfo.project.name);
  const shoot = async (name: string) => {
    await hydrated(page);
    const file = path.join(dir, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    await testInfo.attach(name, { path: file, contentType: 'image/png' });
  };
  await page.goto('/login');
  await shoot('login');
  await page.goto('/register');
  await shoot('register');
  await registerUser(page);
  await expect(page.getByTestId('workspace-list')).toBeVisible();
  await shoot('workspaces');
  await page.goto('/settings/profile');
  await shoot('settings-profile');
  await page.goto('/settings/security');
  await shoot('settings-security');
  // Nothing overflows sideways on a phone.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
});
