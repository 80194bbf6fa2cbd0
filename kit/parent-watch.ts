/**
 * Preloaded into every gateway the kit starts (`--import kit/parent-watch.ts`): exits the process when
 * the test run or benchmark that started it is gone (re-parented), so one killed with SIGKILL, which
 * runs no exit hook, never leaves a gateway behind.
 */
const parent = process.ppid;
const timer = setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1000);
timer.unref();
