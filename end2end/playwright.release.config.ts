import { defineConfig } from '@playwright/test';
import { binary, dataDir as makeDataDir, projects } from './common';

// The release smoke run: the binary `scripts/run` builds, copied alone to an empty directory
// (it must carry its own site files), started with a throw-away data dir. With
// QINGTING_E2E_URL set, it runs against that server instead (scripts/fresh-check).
const external = process.env.QINGTING_E2E_URL;
process.env.QINGTING_E2E_PORT ??= '3200';
const port = Number(process.env.QINGTING_E2E_PORT);
const bin = binary('release');
const dataDir = makeDataDir('qingting-release-');

export default defineConfig({
  testDir: './release',
  timeout: 180_000,
  expect: { timeout: 10_000 },
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results/release',
  use: {
    baseURL: external ?? `http://localhost:${port}`,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  projects,
  webServer: external
    ? undefined
    : {
        // No --site-root and no site/ beside the binary: the site comes from inside it.
        command: `exec "${bin}" --config qingting.e2e.toml --listen 127.0.0.1:${port} --public-url http://localhost:${port} --data-dir "${dataDir}" > "${dataDir}/server.log" 2>&1`,
        url: `http://127.0.0.1:${port}/healthz`,
        reuseExistingServer: false,
        timeout: 60_000,
        env: { QINGTING_EDITORS_DIR: process.env.QINGTING_EDITORS_DIR ?? `${dataDir}/editors` },
      },
});
