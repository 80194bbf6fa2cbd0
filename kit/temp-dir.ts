/** Temporary folders that outlive no test run: removed by `remove()`, or when this process exits. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TempDir {
  readonly dir: string;
  /** Removes the folder and everything in it; calling it again does nothing. */
  remove(): void;
}

export function tempDir(prefix: string): TempDir {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const remove = () => {
    process.removeListener('exit', remove);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', remove);
  return { dir, remove };
}
