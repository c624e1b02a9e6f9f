// What both Playwright configs (the suite and the release smoke run) share.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { devices } from '@playwright/test';

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

/** Desktop Chromium and a Pixel 5 phone, in every config. */
export const projects = [
  { name: 'desktop', use: { ...devices['Desktop Chrome'], launchOptions } },
  { name: 'phone', use: { ...devices['Pixel 5'], launchOptions } },
];

/** The credentials the FC simulator accepts and the `fc` servers sign with. */
export const fcCredentials = { ALIBABA_CLOUD_ACCESS_KEY_ID: 'e2e-fc', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'e2e-fc-secret' };

/** The stand-in for GitHub OAuth (`qingting fake-github`), client `e2e-client`/`e2e-secret`. */
export const fakeGithubServer = (bin: string, port: number, dataDir: string) => ({
  command: `exec "${bin}" fake-github --listen 127.0.0.1:${port} --client-id e2e-client --client-secret e2e-secret > "${dataDir}/fake-github.log" 2>&1`,
  url: `http://127.0.0.1:${port}/`,
  reuseExistingServer: false,
  timeout: 30_000,
});

/** The FC simulator (`qingting fc-sim`). */
export const fcSimServer = (bin: string, port: number, dataDir: string) => ({
  command: `exec "${bin}" fc-sim --listen 127.0.0.1:${port} > "${dataDir}/fc-sim.log" 2>&1`,
  port,
  reuseExistingServer: false,
  timeout: 30_000,
  env: fcCredentials,
});
