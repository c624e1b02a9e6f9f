// What both Playwright configs (the suite and the release smoke run) share.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

// Debian's Chromium; Playwright's own browser download is not used. Device presets don't
// inherit top-level launch options, so every project of every config names them.
export const launchOptions = {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
};

/** The server's throw-away data dir: QINGTING_E2E_DATA, made once in the main process
 * (workers inherit the variable). */
export function dataDir(prefix: string): string {
  process.env.QINGTING_E2E_DATA ??= fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return process.env.QINGTING_E2E_DATA!;
}

/** The `qingting` binary under test: QINGTING_BIN, else the build tree's. */
export const binary = (profile: 'debug' | 'release') =>
  process.env.QINGTING_BIN ?? path.resolve(__dirname, `../target/${profile}/qingting`);
