/**
 * The placement index: eligible GPUs grouped in pools (same model, same region), and inside each pool
 * bucketed by free capacity on each dimension (render, encoder, VRAM), as a share of the capacity
 * under headroom. A decision walks the buckets of the request's dominant dimension from the first
 * that can fit (packed) or from the emptiest (spread) and stops at the first GPU that fits on every
 * dimension, so its cost depends on the number of pools and buckets, not on the number of GPUs.
 * Updates are O(1): a GPU moves between buckets only when its load or eligibility changes.
 */
import type { GpuChangeListener } from '../cluster/cluster-state.js';
import type { GpuSlot, Headroom } from '../cluster/gpu-slot.js';
import { fullShare, type LoadVector } from '../cost/session-cost.js';
import type { PlacementStrategy } from './strategy.js';

/** Buckets per dimension; a share s in [0, 1] goes to bucket floor(s * bucketCount). */
const bucketCount = 256;
const dimensionCount = 3;
type Dimension = 0 | 1 | 2; // gpu, encoder, vram

export interface PlacementRequest {
  /** Cost of the session on each GPU model allowed to host it, keyed by model name. */
  costs: ReadonlyMap<string, LoadVector>;
  strategy: PlacementStrategy;
  region?: string | undefined;
  /** Every label must match the node's label of the same name. */
  labels?: Readonly<Record<string, string>> | undefined;
  excludeNodeId?: string | undefined;
}

export interface PlacementChoice {
  gpu: GpuSlot;
  cost: LoadVector;
}

interface IndexEntry {
  pool: Pool;
  buckets: Int32Array; // per dimension
  positions: Int32Array; // per dimension: position inside the bucket array
}

class Pool {
  readonly modelName: string;
  readonly region: string;
  /** buckets[d][b] = GPUs whose free share on dimension d falls in bucket b. */
  readonly buckets: GpuSlot[][][] = [];
  /** Non-empty bucket counts per dimension, to skip empty pools fast. */
  size = 0;
  readonly vramReferenceMiB: number;

  constructor(modelName: string, region: string, vramReferenceMiB: number) {
    this.modelName = modelName;
    this.region = region;
    this.vramReferenceMiB = vramReferenceMiB;
    for (let d = 0; d < dimensionCount; d++) {
      this.buckets.push(Array.from({ length: bucketCount + 1 }, () => []));
    }
  }
}

function bucketOf(share: number): number {
  if (!(share > 0)) return 0;
  if (share >= 1) return bucketCount;
  return Math.floor(share * bucketCount);
}

export class PlacementIndex implements GpuChangeListener {
  private readonly headroom: Headroom;
  private readonly pools = new Map<string, Pool>();
  private readonly poolList: Pool[] = [];
  private readonly gpuCapacity: number;
  private readonly encoderCapacity: number;

  constructor(headroom: Headroom) {
    this.headroom = headroom;
    this.gpuCapacity = Math.floor(headroom.gpu * fullShare);
    this.encoderCapacity = Math.floor(headroom.encoder * fullShare);
  }

  /** Number of GPUs currently eligible and indexed. */
  get size(): number {
    let total = 0;
    for (const pool of this.poolList) total += pool.size;
    return total;
  }

  gpuChanged(gpu: GpuSlot): void {
    if (!gpu.eligible) {
      this.gpuRemoved(gpu);
      return;
    }
    const entry = gpu.placementEntry as IndexEntry | undefined;
    const pool = entry?.pool ?? this.poolFor(gpu);
    const free = this.freeShares(gpu, pool);
    if (!entry) {
      const created: IndexEntry = { pool, buckets: new Int32Array(dimensionCount), positions: new Int32Array(3) };
      gpu.placementEntry = created;
      for (let d = 0; d < dimensionCount; d++) this.insert(pool, d as Dimension, bucketOf(free[d]!), gpu, created);
      pool.size++;
      return;
    }
    for (let d = 0; d < dimensionCount; d++) {
      const bucket = bucketOf(free[d]!);
      if (bucket !== entry.buckets[d]) {
        this.remove(pool, d as Dimension, gpu, entry);
        this.insert(pool, d as Dimension, bucket, gpu, entry);
      }
    }
  }

  gpuRemoved(gpu: GpuSlot): void {
    const entry = gpu.placementEntry as IndexEntry | undefined;
    if (!entry) return;
    for (let d = 0; d < dimensionCount; d++) this.remove(entry.pool, d as Dimension, gpu, entry);
    entry.pool.size--;
    gpu.placementEntry = undefined;
  }

  /** Picks the GPU for a request, or undefined when no eligible GPU fits on every dimension. */
  pick(request: PlacementRequest): PlacementChoice | undefined {
    const upward = request.strategy === 'packed';
    let best: PlacementChoice | undefined;
    let bestScore = upward ? Infinity : -Infinity;
    for (const pool of this.poolList) {
      if (pool.size === 0) continue;
      if (request.region !== undefined && pool.region !== request.region) continue;
      const cost = request.costs.get(pool.modelName);
      if (!cost) continue;
      const needs = this.needShares(cost, pool);
      let dominant: Dimension = 0;
      for (let d = 1; d < dimensionCount; d++) if (needs[d]! > needs[dominant]!) dominant = d as Dimension;
      const need = needs[dominant]!;
      if (need > 1) continue;
      const found = this.walk(pool, dominant, bucketOf(need), upward, cost, request);
      if (!found) continue;
      // Score: free share left on the dominant dimension after placing (packed wants least, spread most).
      const score = this.freeShares(found, pool)[dominant]! - need;
      if (upward ? score < bestScore : score > bestScore) {
        bestScore = score;
        best = { gpu: found, cost };
      }
    }
    return best;
  }

  /** True when `gpu` can take `cost` now on every dimension (exact, in integer units). */
  fits(gpu: GpuSlot, cost: LoadVector): boolean {
    const effective = gpu.effective();
    if (effective.gpu + cost.gpu > this.gpuCapacity) return false;
    if (effective.encoder + cost.encoder > this.encoderCapacity) return false;
    if (effective.vramMiB + cost.vramMiB > Math.floor(this.headroom.vram * gpu.memoryTotalMiB)) return false;
    const model = gpu.model;
    if (
      model.encoderSessionScope === 'gpu' &&
      model.encoderSessionLimit !== null &&
      effective.encoderSessions + cost.encoderSessions > model.encoderSessionLimit
    ) {
      return false;
    }
    const node = gpu.node;
    if (
      node.systemEncoderSessionLimit !== null &&
      node.encoderSessionsInUse() + cost.encoderSessions > node.systemEncoderSessionLimit
    ) {
      return false;
    }
    return true;
  }

  private walk(
    pool: Pool,
    dimension: Dimension,
    firstBucket: number,
    upward: boolean,
    cost: LoadVector,
    request: PlacementRequest,
  ): GpuSlot | undefined {
    const buckets = pool.buckets[dimension]!;
    const step = upward ? 1 : -1;
    const end = upward ? bucketCount + 1 : firstBucket - 1;
    for (let b = upward ? firstBucket : bucketCount; b !== end; b += step) {
      const bucket = buckets[b]!;
      for (let i = 0; i < bucket.length; i++) {
        const gpu = bucket[i]!;
        if (request.excludeNodeId !== undefined && gpu.node.id === request.excludeNodeId) continue;
        if (request.labels && !labelsMatch(gpu.node.labels, request.labels)) continue;
        if (this.fits(gpu, cost)) return gpu;
      }
    }
    return undefined;
  }

  private poolFor(gpu: GpuSlot): Pool {
    const region = gpu.node.labels.region ?? '';
    const key = `${gpu.model.name}\u0000${region}`;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new Pool(gpu.model.name, region, gpu.model.vramMiB);
      this.pools.set(key, pool);
      this.poolList.push(pool);
    }
    return pool;
  }

  private freeShares(gpu: GpuSlot, pool: Pool): [number, number, number] {
    const effective = gpu.effective();
    const vramCapacity = this.headroom.vram * pool.vramReferenceMiB;
    return [
      (this.gpuCapacity - effective.gpu) / this.gpuCapacity,
      (this.encoderCapacity - effective.encoder) / this.encoderCapacity,
      (Math.floor(this.headroom.vram * gpu.memoryTotalMiB) - effective.vramMiB) / vramCapacity,
    ];
  }

  private needShares(cost: LoadVector, pool: Pool): [number, number, number] {
    return [
      cost.gpu / this.gpuCapacity,
      cost.encoder / this.encoderCapacity,
      cost.vramMiB / (this.headroom.vram * pool.vramReferenceMiB),
    ];
  }

  private insert(pool: Pool, d: Dimension, bucketIndex: number, gpu: GpuSlot, entry: IndexEntry): void {
    const bucket = pool.buckets[d]![bucketIndex]!;
    entry.buckets[d] = bucketIndex;
    entry.positions[d] = bucket.length;
    bucket.push(gpu);
  }

  /** Swap-remove: O(1), the last GPU of the bucket takes the freed position. */
  private remove(pool: Pool, d: Dimension, gpu: GpuSlot, entry: IndexEntry): void {
    const bucket = pool.buckets[d]![entry.buckets[d]!]!;
    const position = entry.positions[d]!;
    const last = bucket.pop()!;
    if (last !== gpu) {
      bucket[position] = last;
      (last.placementEntry as IndexEntry).positions[d] = position;
    }
  }
}

function labelsMatch(nodeLabels: Readonly<Record<string, string>>, wanted: Readonly<Record<string, string>>): boolean {
  for (const key in wanted) if (nodeLabels[key] !== wanted[key]) return false;
  return true;
}
