/**
 * GPU inventory taken once at start with `systeminformation` (model, VRAM, bus id, driver). Its
 * `graphics()` runs lspci and nvidia-smi with execSync, which would freeze the probe's event loop (and
 * so its pushes and /metrics) for as long as they take; it therefore runs in a child Node process of
 * its own process group, which a timeout can kill together with whatever it exec'd. A worker thread
 * could not be stopped mid-execSync. Failure is reported, never fatal: samples do not depend on it.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

export interface GpuInventoryEntry {
  /** Position among the NVIDIA controllers systeminformation lists (nvidia-smi order on Linux). */
  index: number;
  model: string | null;
  vramMiB: number | null;
  busId: string | null;
  driverVersion: string | null;
}

export type InventoryResult =
  | { ok: true; gpus: GpuInventoryEntry[]; durationMs: number }
  | { ok: false; error: string; durationMs: number };

/** Runs in the child: prints the controllers as JSON on stdout. */
const childScript = `
const si = await import(process.argv[1]);
const graphics = await (si.default ?? si).graphics();
process.stdout.write(JSON.stringify(graphics.controllers ?? []));
`;

interface RawController {
  vendor?: string;
  model?: string;
  name?: string;
  vram?: number | null;
  memoryTotal?: number;
  busAddress?: string;
  pciBus?: string;
  driverVersion?: string;
}

/** Lists the NVIDIA GPUs; gives up after `timeoutMs` or when `signal` aborts (the probe stops). */
export function takeInventory(timeoutMs = 10_000, signal?: AbortSignal): Promise<InventoryResult> {
  const startedAt = Date.now();
  const moduleUrl = pathToFileURL(createRequire(import.meta.url).resolve('systeminformation')).href;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', childScript, moduleUrl], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let settled = false;
    const settle = (result: InventoryResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const killGroup = (why: string) => {
      try {
        // Negative pid: the whole group, so a hung lspci/nvidia-smi dies with its parent.
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {}
      settle({ ok: false, error: why, durationMs: Date.now() - startedAt });
    };
    const timer = setTimeout(() => killGroup(`timed out after ${timeoutMs} ms`), timeoutMs);
    signal?.addEventListener('abort', () => killGroup('aborted: the probe is stopping'), { once: true });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-2048);
    });
    child.once('error', (error) =>
      settle({ ok: false, error: error.message, durationMs: Date.now() - startedAt }),
    );
    child.once('close', (code) => {
      const durationMs = Date.now() - startedAt;
      if (code !== 0) {
        settle({
          ok: false,
          error: `exited with code ${code}: ${stderr.trim().split('\n')[0] ?? ''}`,
          durationMs,
        });
        return;
      }
      try {
        settle({ ok: true, gpus: nvidiaControllers(JSON.parse(stdout) as RawController[]), durationMs });
      } catch (error) {
        settle({ ok: false, error: `unreadable output: ${(error as Error).message}`, durationMs });
      }
    });
  });
}

/** The NVIDIA controllers, in listed order. Zero/absent values are unknown (systeminformation drops zeros). */
function nvidiaControllers(controllers: readonly RawController[]): GpuInventoryEntry[] {
  return controllers
    .filter((controller) => /nvidia/i.test(`${controller.vendor ?? ''} ${controller.model ?? ''}`))
    .map((controller, index) => {
      const vram = controller.memoryTotal || controller.vram;
      return {
        index,
        model: controller.name || controller.model || null,
        vramMiB: typeof vram === 'number' && vram > 0 ? vram : null,
        busId: controller.pciBus || controller.busAddress || null,
        driverVersion: controller.driverVersion || null,
      };
    });
}
