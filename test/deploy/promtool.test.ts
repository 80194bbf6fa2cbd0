import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const prometheusDir = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));

async function hasPromtool(): Promise<boolean> {
  try {
    await run('promtool', ['--version']);
    return true;
  } catch {
    return false;
  }
}

const promtool = await hasPromtool();
if (!promtool)
  console.warn(
    'promtool not found: skipping the alert rule checks (apt-get install prometheus; .ci/run does)',
  );

/** promtool answers non-zero on any failure; its output says which rule or test. */
async function promtoolSays(...args: string[]): Promise<string> {
  const { stdout, stderr } = await run('promtool', args, { cwd: prometheusDir });
  return stdout + stderr;
}

describe.skipIf(!promtool)('deploy/prometheus: promtool', () => {
  it('vca-alerts.yml is a valid rule file', async () => {
    expect(await promtoolSays('check', 'rules', 'vca-alerts.yml')).toMatch(/SUCCESS/);
  });

  it('every alert fires and stays quiet as vca-alerts.test.yml specifies', async () => {
    expect(await promtoolSays('test', 'rules', 'vca-alerts.test.yml')).toMatch(/SUCCESS/);
  });

  it('prometheus.yml is a valid configuration', async () => {
    expect(await promtoolSays('check', 'config', '--syntax-only', 'prometheus.yml')).toMatch(/SUCCESS/);
  });
});
