/**
 * Test support for gpu-probe: the real nvidia-smi captures, a fake `nvidia-smi` executable that
 * replays them (written into a temp dir, to be put first on PATH or passed with --nvidia-smi), and
 * helpers that run the probe's CLI as a real child process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const fixtureDir = path.join(repoRoot, 'test/fixtures/nvidia-smi');
const cliPath = path.join(repoRoot, 'gpu-probe/src/cli.ts');
const fakeScript = path.join(import.meta.dirname, 'fake-nvidia-smi.sh');

/** Every `*.query-gpu.csv` capture, by short name like `nvidia-l40s.load`. */
export function captures(): Array<{ name: string; file: string }> {
  return readdirSync(fixtureDir)
    .filter((file) => file.endsWith('.query-gpu.csv'))
    .sort()
    .map((file) => ({
      name: file
        .replace(/^linux-x86_64__/, '')
        .replace(/__[\d.]+\./, '.')
        .replace(/\.query-gpu\.csv$/, ''),
      file: path.join(fixtureDir, file),
    }));
}

export function capture(name: string): string {
  const found = captures().find((entry) => entry.name === name);
  if (!found)
    throw new Error(
      `no capture ${name}; have ${captures()
        .map((entry) => entry.name)
        .join(', ')}`,
    );
  return found.file;
}

export interface FakeSmiConfig {
  fixtures: string[];
  gpus?: number;
  exitAfterRows?: number;
  hangAfterRows?: number;
  reject?: string[];
}

export interface FakeSmi {
  /** The directory holding `nvidia-smi`: put it first on PATH. */
  dir: string;
  /** The `nvidia-smi` executable itself. */
  command: string;
  /** One line per start, with the arguments it was given. */
  startsFile: string;
  remove(): void;
}

const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;

export function makeFakeSmi(config: FakeSmiConfig): FakeSmi {
  const dir = mkdtempSync(path.join(tmpdir(), 'fake-smi-'));
  const command = path.join(dir, 'nvidia-smi');
  const startsFile = path.join(dir, 'starts.log');
  const variables: Record<string, string | undefined> = {
    FAKE_SMI_FIXTURES: config.fixtures.join(','),
    FAKE_SMI_GPUS: config.gpus?.toString(),
    FAKE_SMI_EXIT_AFTER: config.exitAfterRows?.toString(),
    FAKE_SMI_HANG_AFTER: config.hangAfterRows?.toString(),
    FAKE_SMI_REJECT: config.reject?.join(','),
    FAKE_SMI_STARTS: startsFile,
  };
  const exports = Object.entries(variables)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `export ${name}=${quote(value!)}`)
    .join('\n');
  writeFileSync(command, `#!/bin/sh\n${exports}\nexec /bin/bash ${quote(fakeScript)} "$@"\n`);
  chmodSync(command, 0o755);
  return { dir, command, startsFile, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion (`process.execPath --import tsx gpu-probe/src/cli.ts ...`). */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 15_000,
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cliPath, ...args], { cwd: repoRoot, env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gpu-probe did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A probe running as a child process, with its stderr log lines parsed. */
export class ProbeProcess {
  readonly child: ChildProcess;
  readonly logs: Array<Record<string, unknown>> = [];
  stderr = '';
  private readonly exited: Promise<number | null>;

  constructor(args: string[], env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn(process.execPath, ['--import', 'tsx', cliPath, ...args], { cwd: repoRoot, env });
    this.child.stdout!.resume();
    let partial = '';
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        try {
          this.logs.push(JSON.parse(line));
        } catch {}
      }
    });
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
  }

  /** The /metrics port from the "metrics server listening" log line. */
  async metricsPort(): Promise<number> {
    const line = await waitFor(() => this.logs.find((log) => log.msg === 'metrics server listening'), {
      what: `metrics port in the probe's log; stderr: ${this.stderr}`,
    });
    return line.port as number;
  }

  /** The /ping port from the "ping server listening" log line. */
  async pingPort(): Promise<number> {
    const line = await waitFor(() => this.logs.find((log) => log.msg === 'ping server listening'), {
      what: `ping port in the probe's log; stderr: ${this.stderr}`,
    });
    return line.port as number;
  }

  /** SIGTERM, then the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGCONT');
      this.child.kill('SIGTERM');
    }
    return this.exited;
  }
}

/** Polls `probe` until it returns something truthy (async allowed) or `timeoutMs` passes. */
export async function waitFor<T>(
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  { timeoutMs = 8000, intervalMs = 25, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
