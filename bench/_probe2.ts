import { buildFleet } from './fleet.js';
const n = Number(process.argv[2] ?? 10000);
for (const strategy of ['packed', 'spread'] as const) {
const fleet = buildFleet({ gpus: n, seed: 42, occupancy: 0.6 });
const { index, shapes, gpus, random } = fleet;
let fitsCalls = 0; let fitsTrue = 0;
const orig = index.fits.bind(index);
index.fits = (g, c) => { fitsCalls++; const r = orig(g, c); if (r) fitsTrue++; return r; };
const hist: number[] = [];
const N = 20000; let fail = 0;
for (let i = 0; i < N; i++) {
  const shape = shapes[Math.floor(random() * shapes.length)]!;
  const before = fitsCalls;
  const c = index.pick(shape.requests[strategy]);
  hist.push(fitsCalls - before);
  if (c) { fleet.commit(c.gpu, c.cost, shape); fleet.releaseLike(shape); } else fail++;
  for (let u = 0; u < 3; u++) fleet.reportTelemetry(gpus[Math.floor(random() * gpus.length)]!);
}
hist.sort((a, b) => a - b);
console.log(strategy, n, { fail, fitsPerPickMean: fitsCalls / N, median: hist[N >> 1], p90: hist[Math.floor(N * 0.9)], p99: hist[Math.floor(N * 0.99)], fitsTrue: fitsTrue / N });
}
