/**
 * `npm run demo -- --autoscale`: the demo with its simulated Heat group starts, the group's members
 * register through the contextualization hook with their Heat membership, and it stops cleanly. (The
 * hook flow itself is specified in heat-hooks.test.ts; a whole scale-down cycle takes minutes.)
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('demo: --autoscale', () => {
  it('starts a simulated Heat group whose members register as nodes, serves gamers, and stops cleanly', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'demo/demo.ts', '--autoscale', '--duration', '20', '--plain'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, output.slice(-3000)).toBe(0);
    const lastView = output.slice(output.lastIndexOf('VCA demo'));
    expect(lastView).toContain('orchestrator (simulated Heat group, pre-delete hook on each member):');
    const registered = [...output.matchAll(/heat: member (\w{12}) booted; registered as node (gpu-\w{12})/g)];
    expect(registered.length).toBeGreaterThanOrEqual(3);
    for (const [, member, node] of registered.slice(0, 3)) {
      expect(node).toBe(`gpu-${member}`);
      // Still in the fleet, or removed the Heat way: the oldest member first, its hook cleared by the VCA.
      const inFleet = new RegExp(`${node}\\s+(provisioning|ready|draining)`).test(lastView);
      const removed = output.includes(`the VCA cleared member ${member}'s hook; its VM is deleted`);
      expect(inFleet || removed, `${node} neither in the view nor removed`).toBe(true);
    }
    // Heat's order: a scale-down removes the oldest member, the first one created.
    const removals = [...output.matchAll(/heat: scale-down removes member (\w{12}) \(the oldest\)/g)];
    if (removals.length > 0) expect(removals[0]![1]).toBe(registered[0]![1]);
    const stats = JSON.parse(/demo stopped: (\{.*\})/.exec(output)![1]!) as Record<string, number>;
    expect(stats.requested).toBeGreaterThan(0);
    expect(stats.lost).toBe(0);
  }, 90_000);
});
