/**
 * Preloaded into benchmark children (`--import ./bench/parent-watch.ts`): exits the process when the
 * benchmark that started it is gone (re-parented), so a killed benchmark never leaves a gateway behind.
 */
const parent = process.ppid;
const timer = setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1000);
timer.unref();
