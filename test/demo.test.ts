import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('demo: npm run demo', () => {
  it('starts the gateway and simulated nodes, serves synthetic gamers, and stops cleanly', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'demo/demo.ts', '--duration', '20', '--plain'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, output.slice(-2000)).toBe(0);
    // Every simulated node became ready and the live view showed the GPUs of each model.
    const lastView = output.slice(output.lastIndexOf('VCA demo'));
    for (const node of ['eu-l40s-1', 'eu-l4-1', 'eu-l4-2', 'eu-4080s-1', 'eu-k2-1']) {
      expect(lastView).toMatch(new RegExp(`${node}\\s+ready`));
    }
    const stats = JSON.parse(/demo stopped: (\{.*\})/.exec(output)![1]!) as Record<string, number>;
    expect(stats.requested).toBeGreaterThan(3);
    expect(stats.assigned).toBeGreaterThan(0);
  }, 60_000);
});
