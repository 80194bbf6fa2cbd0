import { buildFleet } from './fleet.js';
const occ = Number(process.argv[2] ?? 0.6);
const n = Number(process.argv[3] ?? 10000);
for (const strategy of ['packed', 'spread'] as const) {
const fleet = buildFleet({ gpus: n, seed: 42, occupancy: occ });
const { index, shapes, gpus, random } = fleet;
let fail = 0; let okT = 0; let failT = 0;
const N = 40000;
for (let i = 0; i < N; i++) {
  const shape = shapes[Math.floor(random() * shapes.length)]!;
  const t0 = process.hrtime.bigint();
  const c = index.pick(shape.requests[strategy]);
  const dt = Number(process.hrtime.bigint() - t0);
  if (c) { okT += dt; fleet.commit(c.gpu, c.cost); fleet.releaseRandom(); }
  else { fail++; failT += dt; }
  for (let u = 0; u < 3; u++) fleet.reportTelemetry(gpus[Math.floor(random() * gpus.length)]!);
}
console.log(strategy, occ, n, { fail, okMean: okT / (N - fail) / 1000, failMean: failT / Math.max(1, fail) / 1000, occAfter: fleet.occupancy() });
}
