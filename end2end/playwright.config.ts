import { defineConfig } from '@playwright/test';
import { binary, dataDir as makeDataDir, fakeGithubServer, fcCredentials, fcSimServer, projects } from './common';

// The server under test: a freshly started binary with a throw-away data dir and SQLite.
const port = Number(process.env.QINGTING_E2E_PORT ?? 3100);
// The in-repo stand-in for GitHub OAuth (`qingting fake-github`).
const githubPort = port + 1;
// The FC simulator (`qingting fc-sim`) and a second server with the `fc` runtime against it.
const fcSimPort = port + 2;
const fcPort = port + 3;
const bin = binary('debug');
const dataDir = makeDataDir('qingting-e2e-');

export default defineConfig({
  testDir: './tests',
  // Run by playwright.replicas.config.ts, against two replicas.
  testIgnore: 'replicas.spec.ts',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  workers: 2,
  retries: 0,
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  outputDir: 'test-results',
  use: {
    baseURL: `http://localhost:${port}`,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  projects,
  webServer: [
    fakeGithubServer(bin, githubPort, dataDir),
    {
      // Server logs go to the data dir (printed by scripts/test when a test fails).
      command: `exec "${bin}" --config qingting.e2e.toml --listen 127.0.0.1:${port} --public-url http://localhost:${port} --data-dir "${dataDir}" > "${dataDir}/server.log" 2>&1`,
      url: `http://127.0.0.1:${port}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      env: {
        QINGTING_GITHUB_CLIENT_ID: 'e2e-client',
        QINGTING_GITHUB_CLIENT_SECRET: 'e2e-secret',
        // The IDEs, installed once outside the checkout by scripts/test (`qingting editors install`).
        QINGTING_EDITORS_DIR: process.env.QINGTING_EDITORS_DIR ?? `${dataDir}/editors`,
      },
    },
    fcSimServer(bin, fcSimPort, dataDir),
    {
      command: `exec "${bin}" --config qingting.e2e-fc.toml --listen 127.0.0.1:${fcPort} --public-url http://localhost:${fcPort} --data-dir "${dataDir}/fc" > "${dataDir}/server-fc.log" 2>&1`,
      url: `http://127.0.0.1:${fcPort}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      env: fcCredentials,
    },
  ],
});
