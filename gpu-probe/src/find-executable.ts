/** Finds an executable the way a shell would (a path as given, a bare name on PATH), without running it. */
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The absolute path of `command`, or undefined when there is no such executable. */
export function findExecutable(command: string, searchPath = process.env.PATH ?? ''): string | undefined {
  if (command.includes('/')) {
    const file = path.resolve(command);
    return isExecutableFile(file) ? file : undefined;
  }
  for (const directory of searchPath.split(path.delimiter)) {
    if (directory === '') continue;
    const file = path.join(directory, command);
    if (isExecutableFile(file)) return file;
  }
  return undefined;
}
