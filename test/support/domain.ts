/** Test support: a VCA domain on the real catalog with a fake clock and predictable ids. */
import { idleGpus } from '../../kit/idle-telemetry.js';
import { loadCatalog } from '../../src/config/load-catalog.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { VcaConfig } from '../../src/config/schema.js';
import type { NodeRegistration } from '../../src/fleet/render-node.js';
import type { VcaEvent } from '../../src/sessions/events.js';
import { createVca, type Vca } from '../../src/vca.js';

export class FakeClock {
  current: number;
  constructor(start = 1_700_000_000_000) {
    this.current = start;
  }
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
}

export interface TestVca extends Vca {
  clock: FakeClock;
  seen: VcaEvent[];
  /** Runs scheduled queue passes now. */
  flush(): Promise<void>;
}

export function createTestVca(overrides: Record<string, unknown> = {}): TestVca {
  const config = loadConfig({ env: {}, overrides }) as VcaConfig;
  const clock = new FakeClock();
  let counter = 0;
  const pending: Array<() => void> = [];
  const vca = createVca({
    config,
    catalog: loadCatalog(config),
    clock,
    ids: () => `s-${++counter}`,
    schedule: (task) => pending.push(task),
  });
  const seen: VcaEvent[] = [];
  vca.events.subscribe((event) => seen.push(event));
  return Object.assign(vca, {
    clock,
    seen,
    async flush() {
      while (pending.length > 0) pending.shift()!();
      await vca.sessions.runQueuePass();
    },
  });
}

function nodeRegistration(
  id: string,
  model: string,
  count = 1,
  labels: Record<string, string> = {},
): NodeRegistration {
  return { id, host: '127.0.0.1', port: 5900, protocol: 'webrtc', gpus: [{ model, count }], labels };
}

/** Registers a node and reports it idle so it becomes ready. */
export async function addReadyNode(
  vca: Vca,
  id: string,
  model: string,
  count = 1,
  labels: Record<string, string> = {},
) {
  await vca.fleet.registerNodes([nodeRegistration(id, model, count, labels)]);
  return vca.fleet.recordTelemetry(id, { gpus: idleGpus(count) });
}

export async function expectInvariant(vca: Vca): Promise<void> {
  const audit = await vca.store.audit();
  for (const gpu of audit.gpus) {
    if (JSON.stringify(gpu.committed) !== JSON.stringify(gpu.sumOfSessions)) {
      throw new Error(`committed load of ${gpu.nodeId}#${gpu.index} drifted: ${JSON.stringify(gpu)}`);
    }
  }
}
