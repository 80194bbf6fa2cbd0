/**
 * A stand-in for `nvidia-smi --query-gpu=... --format=csv[,nounits] [-lms N]` that replays real captures
 * (shared/fixtures/nvidia-smi/*.query-gpu.csv): it prints the requested columns by name, header first,
 * then the fixture rows, once or every N ms. Misbehaviour on demand, through the environment:
 * FAKE_SMI_FIXTURES (comma-separated files, rows cycled), FAKE_SMI_GPUS (rows per tick, index 0..N-1),
 * FAKE_SMI_EXIT_AFTER (crash with code 3 after that many data rows), FAKE_SMI_HANG_AFTER (go silent
 * after that many rows), FAKE_SMI_REJECT (a field this "driver" does not know), FAKE_SMI_STARTS (a file
 * that gets one line per start).
 */
import { appendFileSync, readFileSync } from 'node:fs';

const env = process.env;
if (env.FAKE_SMI_STARTS) appendFileSync(env.FAKE_SMI_STARTS, `${process.argv.slice(2).join(' ')}\n`);

const args = process.argv.slice(2);
const query = args.find((arg) => arg.startsWith('--query-gpu='))?.slice('--query-gpu='.length);
const format = args.find((arg) => arg.startsWith('--format='))?.slice('--format='.length) ?? 'csv';
const loopIndex = args.indexOf('-lms');
const loopMs = loopIndex >= 0 ? Number(args[loopIndex + 1]) : null;
if (!query) {
  console.log('usage: fake nvidia-smi --query-gpu=FIELDS --format=csv [-lms N]');
  process.exit(0);
}
const fields = query.split(',');
const rejected = env.FAKE_SMI_REJECT ? fields.find((field) => env.FAKE_SMI_REJECT.split(',').includes(field)) : undefined;
if (rejected) {
  console.log(`Field "${rejected}" is not a valid field to query.\n`);
  process.exit(2);
}

const normalise = (name) => name.replace(/\[[^\]]*\]/g, '').trim().toLowerCase();
const aliases = { 'clocks_throttle_reasons.active': 'clocks_event_reasons.active' };
const fixtures = (env.FAKE_SMI_FIXTURES ?? '').split(',').filter(Boolean);
const rows = [];
let header = null;
for (const file of fixtures) {
  const lines = readFileSync(file, 'utf8').split('\n').filter((line) => line.trim() !== '');
  header = lines[0].split(', ');
  for (const line of lines.slice(1)) rows.push(line.split(', '));
}
const columns = fields.map((field) => {
  const wanted = normalise(aliases[field] ?? field);
  const position = header.findIndex((name) => normalise(name) === wanted);
  if (position < 0) {
    console.log(`Field "${field}" is not a valid field to query.\n`);
    process.exit(2);
  }
  return position;
});
const noUnits = format.includes('nounits');
const noHeader = format.includes('noheader');
const gpus = Number(env.FAKE_SMI_GPUS ?? 1);
const exitAfter = env.FAKE_SMI_EXIT_AFTER ? Number(env.FAKE_SMI_EXIT_AFTER) : Number.POSITIVE_INFINITY;
const hangAfter = env.FAKE_SMI_HANG_AFTER ? Number(env.FAKE_SMI_HANG_AFTER) : Number.POSITIVE_INFINITY;

const indexColumn = fields.indexOf('index');
let printed = 0;
let tick = 0;
function printTick() {
  const row = rows[tick % rows.length];
  tick++;
  let out = '';
  for (let gpu = 0; gpu < gpus; gpu++) {
    if (printed >= hangAfter) return;
    const cells = columns.map((position, column) => {
      if (column === indexColumn) return String(gpu);
      const value = row[position];
      return noUnits ? value.replace(/ (%|MiB|W|MHz|us)$/, '') : value;
    });
    out += `${cells.join(', ')}\n`;
    printed++;
    if (printed >= exitAfter) {
      process.stdout.write(out, () => process.exit(3));
      return 'exit';
    }
  }
  process.stdout.write(out);
}

if (!noHeader) process.stdout.write(`${columns.map((position) => header[position]).join(', ')}\n`);
if (loopMs === null) {
  printTick();
} else if (printTick() !== 'exit') {
  const timer = setInterval(() => {
    if (printTick() === 'exit') clearInterval(timer);
  }, loopMs);
}
