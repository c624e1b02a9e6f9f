import { Browser, Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { binary } from '../common';
import { test, expect, hydrated, registerUser, createWorkspace, open, uniqueName, wsOrigin } from './fixtures';

/** Against two replicas on Postgres (playwright.replicas.config.ts), whose workspaces run on
 * the FC simulator: no IDE to open there. */
const replicas = process.env.QINGTING_E2E_REPLICAS_DB;

/** Makes `name` an admin (or a member) the way an operator does: `qingting admin grant|revoke`
 * on the server's machine, with the server's database. */
function setRole(name: string, verb: 'grant' | 'revoke') {
  const database = replicas
    ? ['--database-url', `${process.env.QINGTING_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432'}/${replicas}`]
    : ['--data-dir', process.env.QINGTING_E2E_DATA!];
  execFileSync(binary('debug'), [...database, 'admin', verb, name], { stdio: 'pipe' });
}
const grantAdmin = (name: string) => setRole(name, 'grant');

/** A page in a browser context of its own (another person, elsewhere), with its own address. */
async function person(browser: Browser, isMobile = false): Promise<Page> {
  const baseURL = test.info().project.use.baseURL;
  const phone = { viewport: { width: 393, height: 727 }, isMobile: true, hasTouch: true };
  const context = await browser.newContext(isMobile ? { ...phone, baseURL } : { baseURL });
  const ip = `2001:db8::${Math.floor(Math.random() * 0xffff).toString(16)}:${Math.floor(Math.random() * 0xffff).toString(16)}`;
  await context.setExtraHTTPHeaders({ 'x-forwarded-for': ip });
  return context.newPage();
}

/** The admin's row for a user on /admin/users, found by search. */
async function userRow(admin: Page, name: string) {
  await admin.locator('#user-search').fill(name);
  const row = admin.locator(`#users [data-user="${name}"]`);
  await expect(row).toBeVisible();
  return row;
}

test('an admin suspends a member signed in elsewhere, raises a quota, stops a workspace, and finds it all in the audit log', async ({ page, browser, isMobile }) => {
  test.setTimeout(180_000);
  const admin = page;
  const adminName = await registerUser(admin, uniqueName('adm'));
  grantAdmin(adminName);
  await admin.reload();
  await hydrated(admin);
  await expect(admin.getByRole('link', { name: 'Admin' })).toBeVisible();

  // Two members, each in a browser of their own; the first has a workspace open.
  const suspect = await person(browser, isMobile);
  const suspectName = await registerUser(suspect, uniqueName('sus'));
  await createWorkspace(suspect, 'work', 'jupyter-python');
  let ide: Page | undefined;
  if (!replicas) {
    ide = await open(suspect, 'work');
    await expect(ide).toHaveURL(new RegExp(`^${wsOrigin(suspectName, 'work')}/lab`), { timeout: 30_000 });
    await suspect.bringToFront();
  }

  const other = await person(browser, isMobile);
  const otherName = await registerUser(other, uniqueName('oth'));
  await createWorkspace(other, 'side', 'jupyter-python');

  // Suspend: the member's open dashboard and workspace stop working within a second.
  await admin.goto('/admin/users');
  await hydrated(admin);
  const row = await userRow(admin, suspectName);
  await row.locator('button[data-action=suspend]').click();
  await expect(row.locator('.badge', { hasText: 'suspended' })).toBeVisible();
  // The badge shows once the suspension is written; from then on, a second at most.
  // Across two replicas the member's stream may hang on the other one, which notices the
  // ended session on its next sweep: a second on one server, two across replicas. Waited
  // for by the navigation itself: a polled URL would be seen up to half a second late.
  await suspect.waitForURL(/\/login\?next=%2Fworkspaces$/, { timeout: replicas ? 2_000 : 1_000, waitUntil: 'commit' });
  if (!replicas) {
    // The workspace: a request with its cookie is sent away to sign in, not answered by the
    // IDE (the IDE's own tab reloads itself when its requests fail, so a fresh tab asks).
    const probe = await suspect.context().newPage();
    const landing = async () => {
      await probe.goto(`${wsOrigin(suspectName, 'work')}/lab`, { waitUntil: 'commit' });
      return new URL(probe.url()).pathname;
    };
    await expect.poll(landing, { timeout: 1_000, intervals: [50] }).toBe('/login');
    await probe.close();
    // Shown. The IDE's tab, whose requests now all fail, keeps retrying them in the renderer it
    // shares with the dashboard's tab; it is not needed any more.
    await ide?.close();
  }
  // And they cannot sign back in.
  await suspect.locator('#login-form #username').fill(suspectName);
  await suspect.locator('#login-form #password').fill('correct horse battery');
  await suspect.locator('#login-form button[type=submit]').click();
  await expect(suspect.locator('#login-form .alert-error')).toContainText('suspended');

  // Raise the other member's quota.
  const otherRow = await userRow(admin, otherName);
  await otherRow.locator('summary[data-action=quota]').click();
  await otherRow.locator('input[name=workspaces]').fill('12');
  await otherRow.locator('input[name=running]').fill('4');
  // Sorting the list differently keeps the form open with what was typed.
  await admin.locator('#user-sort').selectOption('name');
  await expect(otherRow.locator('input[name=workspaces]')).toHaveValue('12');
  // Meanwhile the member makes another workspace: the row's counts follow, and the form being
  // filled in stays open with what was typed.
  await createWorkspace(other, 'more', 'jupyter-python');
  await expect(otherRow.locator('.usage')).toContainText('2 workspaces');
  await expect(otherRow.locator('details:has(summary[data-action=quota])')).toHaveAttribute('open', '');
  await expect(otherRow.locator('input[name=workspaces]')).toHaveValue('12');
  await otherRow.locator('button', { hasText: 'Save quota' }).click();
  await expect(admin.locator(`#users [data-user="${otherName}"] .quota`)).toContainText('quota: 12 workspaces, 4 running');

  // Stop the other member's workspace from the admin's list; the member's dashboard follows.
  const tabs = admin.getByRole('navigation', { name: 'Admin' });
  await tabs.getByRole('link', { name: 'Workspaces' }).click();
  await expect(admin).toHaveURL(/\/admin\/workspaces$/);
  const ws = admin.locator(`#all-workspaces [data-workspace="${otherName}/side"]`);
  await expect(ws.locator('[data-state]')).toHaveAttribute('data-state', 'running');
  await ws.locator('button[data-action=stop]').click();
  await expect(admin.locator(`#all-workspaces [data-workspace="${otherName}/side"] [data-state]`)).toHaveAttribute('data-state', 'stopped', { timeout: 30_000 });
  await expect(other.locator('[data-testid=workspace][data-name="side"]')).toHaveAttribute('data-state', 'stopped', { timeout: 10_000 });

  // All three in the audit log, with the admin as the actor.
  await tabs.getByRole('link', { name: 'Audit log' }).click();
  await expect(admin).toHaveURL(/\/admin\/audit$/);
  await admin.locator('#audit-user').fill(suspectName);
  const entry = (action: string, text: string) => admin.locator(`#audit [data-action=${action}]`, { hasText: text });
  await expect(entry('suspend', `${adminName} → ${suspectName}`)).toHaveCount(1);
  // Filtered to the suspended member: nobody else's entries.
  await expect(admin.locator('#audit [data-action]').filter({ hasNotText: suspectName })).toHaveCount(0);
  await admin.locator('#audit-user').fill(otherName);
  await expect(entry('quota_change', `${adminName} → ${otherName}`)).toHaveCount(1);
  await expect(entry('workspace_stop', `${adminName} → ${otherName}/side`)).toHaveCount(1);
  await admin.locator('#audit-action').selectOption('quota_change');
  await expect(admin.locator('#audit [data-action]')).toHaveCount(1);
  await expect(entry('quota_change', 'workspaces=12 running=4')).toHaveCount(1);
});

test('a member gets 404 on the admin pages and the admin API', async ({ page, browser }) => {
  // Whoever registered first on this server is its admin: make sure that is someone else.
  const other = await person(browser);
  const adminName = uniqueName('adm');
  const made = await other.request.post('/api/register', { form: { username: adminName, password: 'correct horse battery' } });
  expect(made.status()).toBe(200);
  await other.context().close();
  grantAdmin(adminName);
  const name = await registerUser(page, uniqueName('mem'));
  setRole(name, 'revoke');
  await page.reload();
  await hydrated(page);
  await expect(page.getByRole('link', { name: 'Admin' })).toHaveCount(0);
  for (const path of ['/admin', '/admin/users', '/admin/workspaces', '/admin/audit']) {
    const res = await page.goto(path);
    expect(res?.status(), path).toBe(404);
    await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
  }
  for (const [endpoint, form] of [
    ['users', { search: '', sort: 'name' }],
    ['workspaces', {}],
    ['instance', {}],
    ['audit', { action: '', user: '', outcome: '' }],
    ['user-action', { id: '1', action: 'suspend' }],
    ['set-quota', { id: '1', workspaces: '99', running: '', memory_mb: '' }],
  ] as const) {
    const res = await page.request.post(`/api/admin/${endpoint}`, { form: form as Record<string, string> });
    expect(res.status(), endpoint).toBe(404);
  }
});

test('every admin page comes alive when loaded directly (and after a plain form post)', async ({ page }) => {
  const name = await registerUser(page, uniqueName('adm'));
  grantAdmin(name);
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text().split('\n')[0]); });
  page.on('pageerror', (e) => errors.push(String(e).split('\n')[0]));
  // `?` is where a form posted without JavaScript comes back to.
  for (const path of ['/admin', '/admin/users', '/admin/users?', '/admin/workspaces', '/admin/audit']) {
    await page.goto(path);
    await hydrated(page);
    // Live: a tab switches pages in the browser, and the page it shows answers too.
    const tabs = page.getByRole('navigation', { name: 'Admin' });
    await tabs.getByRole('link', { name: 'Audit log' }).click();
    await expect(page).toHaveURL(/\/admin\/audit$/);
    await page.locator('#audit-user').fill(name);
    await expect(page.locator('#audit [data-action]').first()).toBeVisible();
    expect(errors, path).toEqual([]);
  }
});
