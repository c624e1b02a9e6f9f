import { execFileSync } from 'node:child_process';

// Drops the run's database; FORCE ends the connections of replicas still shutting down.
export default async function teardown() {
  const name = process.env.QINGTING_E2E_REPLICAS_DB;
  if (!name) return;
  const postgres = process.env.QINGTING_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432';
  execFileSync('psql', [`${postgres}/postgres`, '-qc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
}
