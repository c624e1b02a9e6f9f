import { defineConfig } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { binary, dataDir as makeDataDir, fakeGithubServer, fcCredentials, fcSimServer, projects } from './common';

// The dashboard suite against two replicas on one Postgres database, behind a round-robin
// proxy (replicas/round-robin.mjs): every request may land on either replica. The replicas
// run the `fc` runtime against the FC simulator, as a scaled-out deployment does.
// Avatars go to one S3 bucket (moto's server) that both replicas share.
// Ports (as in the main suite, which must not run at the same time): fake GitHub + 1, FC
// simulator + 2, the proxy + 3 (the address the browser uses, and fc.spec.ts's), S3 + 4, the
// replicas + 10 and + 11.
const port = Number(process.env.QINGTING_E2E_PORT ?? 3100);
const githubPort = port + 1;
const fcSimPort = port + 2;
const proxyPort = port + 3;
const s3Port = port + 4;
const motoServer = process.env.QINGTING_TEST_MOTO_SERVER ?? `${process.env.HOME}/.cache/qingting/moto/bin/moto_server`;
const replicas = [port + 10, port + 11];
const bin = binary('debug');
const dataDir = makeDataDir('qingting-replicas-');

// One fresh database per run, made once in the main process (workers inherit the variables);
// dropped by replicas/teardown.ts.
const postgres = process.env.QINGTING_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432';
if (!process.env.QINGTING_E2E_REPLICAS_DB) {
  const name = `qt_e2e_${randomBytes(6).toString('hex')}`;
  execFileSync('psql', [`${postgres}/postgres`, '-qc', `CREATE DATABASE ${name}`]);
  process.env.QINGTING_E2E_REPLICAS_DB = name;
  process.env.QINGTING_E2E_SECRETS = JSON.stringify({
    QINGTING_SESSION_SECRET: randomBytes(64).toString('hex'),
    QINGTING_WORKSPACES_TOKEN_SECRET: randomBytes(32).toString('hex'),
    QINGTING_WORKSPACES_COOKIE_SECRET: randomBytes(32).toString('hex'),
  });
}
const shared = {
  ...fcCredentials,
  ...JSON.parse(process.env.QINGTING_E2E_SECRETS!),
  QINGTING_DATABASE_URL: `${postgres}/${process.env.QINGTING_E2E_REPLICAS_DB}`,
  QINGTING_GITHUB_CLIENT_ID: 'e2e-client',
  QINGTING_GITHUB_CLIENT_SECRET: 'e2e-secret',
  QINGTING_OBJECTS_BACKEND: 's3',
  QINGTING_OBJECTS_S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
  QINGTING_OBJECTS_S3_BUCKET: 'avatars',
  QINGTING_OBJECTS_S3_PATH_STYLE: 'true',
  QINGTING_S3_ACCESS_KEY_ID: 'e2e-s3',
  QINGTING_S3_SECRET_ACCESS_KEY: 'e2e-s3-secret',
};

// The first replica makes the bucket (once S3 answers) and migrates the database; the second
// starts once the first answers.
const before = (i: number) =>
  i === 0
    ? `until curl -sf -X PUT http://127.0.0.1:${s3Port}/avatars >/dev/null; do sleep 0.2; done; `
    : `until curl -sf http://127.0.0.1:${replicas[0]}/healthz >/dev/null; do sleep 0.2; done; `;
const replica = (p: number, i: number) => ({
  command: `${before(i)}exec "${bin}" --config qingting.e2e-replicas.toml --listen 127.0.0.1:${p} --public-url http://localhost:${proxyPort} --data-dir "${dataDir}/replica-${i}" > "${dataDir}/replica-${i}.log" 2>&1`,
  url: `http://127.0.0.1:${p}/healthz`,
  reuseExistingServer: false,
  timeout: 60_000,
  env: shared,
});

export default defineConfig({
  testDir: './tests',
  testMatch: ['auth.spec.ts', 'settings.spec.ts', 'progressive.spec.ts', 'fc.spec.ts', 'replicas.spec.ts', 'admin.spec.ts', 'tokens.spec.ts'],
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  workers: 2,
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results/replicas',
  globalTeardown: './replicas/teardown.ts',
  use: {
    baseURL: `http://localhost:${proxyPort}`,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  projects,
  webServer: [
    fakeGithubServer(bin, githubPort, dataDir),
    fcSimServer(bin, fcSimPort, dataDir),
    {
      command: `exec "${motoServer}" -H 127.0.0.1 -p ${s3Port} > "${dataDir}/s3.log" 2>&1`,
      port: s3Port,
      reuseExistingServer: false,
      timeout: 60_000,
    },
    ...replicas.map(replica),
    {
      command: `exec node replicas/round-robin.mjs ${proxyPort} ${replicas.join(' ')} > "${dataDir}/proxy.log" 2>&1`,
      url: `http://127.0.0.1:${proxyPort}/healthz`,
      reuseExistingServer: false,
      timeout: 30_000,
    },
  ],
});
