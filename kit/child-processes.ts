/**
 * Lifetime of the child processes the kit starts (gateways, redis-server, a benchmark's baseline
 * server): each is SIGKILLed if this process exits first, so a failed test or an aborted benchmark
 * never leaves servers behind, and each can be stopped gracefully or at once.
 */
import type { ChildProcess } from 'node:child_process';

const tracked = new Set<ChildProcess>();
let exitHookInstalled = false;

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Sends `signal` to every tracked child still running (no waiting). */
export function killTrackedChildren(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const child of tracked) {
    if (!hasExited(child)) child.kill(signal);
  }
}

/** Tracks `child`: SIGKILLed when this process exits while it still runs. Returns it. */
export function killOnExit<T extends ChildProcess>(child: T): T {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => killTrackedChildren('SIGKILL'));
  }
  tracked.add(child);
  child.once('exit', () => tracked.delete(child));
  return child;
}

/** SIGTERM, then SIGKILL after `graceMs` (0: SIGKILL at once); resolves once the child has exited. */
export function stopChild(child: ChildProcess, graceMs = 0): Promise<void> {
  if (hasExited(child)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = graceMs > 0 ? setTimeout(() => child.kill('SIGKILL'), graceMs) : undefined;
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
  });
}
