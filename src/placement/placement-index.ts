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
/** 32-bit words of one dimension's non-empty-bucket bitmap (buckets 0..bucketCount inclusive). */
const bitmapWords = Math.ceil((bucketCount + 1) / 32);
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
  /**
   * Bit b of dimension d (word d * bitmapWords + (b >> 5)) is set while buckets[d][b] is non-empty, so
   * a walk jumps from one non-empty bucket to the next instead of visiting up to 257 empty ones.
   */
  readonly nonEmpty = new Uint32Array(dimensionCount * bitmapWords);
  /** GPUs in the pool, to skip empty pools fast. */
  size = 0;
  readonly vramReferenceMiB: number;
  /** VRAM share denominator: headroom.vram * vramReferenceMiB. */
  readonly vramCapacity: number;

  constructor(modelName: string, region: string, vramReferenceMiB: number, vramHeadroom: number) {
    this.modelName = modelName;
    this.region = region;
    this.vramReferenceMiB = vramReferenceMiB;
    this.vramCapacity = vramHeadroom * vramReferenceMiB;
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
    if (!entry) {
      const created: IndexEntry = {
        pool,
        buckets: new Int32Array(dimensionCount),
        positions: new Int32Array(3),
      };
      gpu.placementEntry = created;
      for (let d = 0; d < dimensionCount; d++) {
        this.insert(pool, d as Dimension, bucketOf(this.freeShare(gpu, pool, d as Dimension)), gpu, created);
      }
      pool.size++;
      return;
    }
    for (let d = 0; d < dimensionCount; d++) {
      const bucket = bucketOf(this.freeShare(gpu, pool, d as Dimension));
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
      // The dominant dimension: the one the session needs the largest share of (first on ties).
      let dominant: Dimension = 0;
      let need = cost.gpu / this.gpuCapacity;
      const encoderNeed = cost.encoder / this.encoderCapacity;
      if (encoderNeed > need) {
        dominant = 1;
        need = encoderNeed;
      }
      const vramNeed = cost.vramMiB / pool.vramCapacity;
      if (vramNeed > need) {
        dominant = 2;
        need = vramNeed;
      }
      if (need > 1) continue;
      const found = upward
        ? this.walkUp(pool, dominant, bucketOf(need), cost, request)
        : this.walkDown(pool, dominant, bucketOf(need), cost, request);
      if (!found) continue;
      // Score: free share left on the dominant dimension after placing (packed wants least, spread most).
      const score = this.freeShare(found, pool, dominant) - need;
      if (upward ? score < bestScore : score > bestScore) {
        bestScore = score;
        best = { gpu: found, cost };
      }
    }
    return best;
  }

  /** True when `gpu` can take `cost` now on every dimension (exact, in integer units). */
  fits(gpu: GpuSlot, cost: LoadVector): boolean {
    // Same checks as on gpu.effective(), one dimension at a time, allocating nothing.
    if (gpu.effectiveGpu() + cost.gpu > this.gpuCapacity) return false;
    if (gpu.effectiveEncoder() + cost.encoder > this.encoderCapacity) return false;
    const vramLimit = Math.floor(this.headroom.vram * gpu.memoryTotalMiB);
    if (gpu.effectiveVramMiB() + cost.vramMiB > vramLimit) return false;
    const model = gpu.model;
    if (
      model.encoderSessionScope === 'gpu' &&
      model.encoderSessionLimit !== null &&
      gpu.effectiveEncoderSessions() + cost.encoderSessions > model.encoderSessionLimit
    ) {
      return false;
    }
    const node = gpu.node;
    if (node.systemEncoderSessionLimit !== null) {
      // node.encoderSessionsInUse(), without its per-GPU allocation.
      let inUse = 0;
      for (const other of node.gpus) inUse += other.effectiveEncoderSessions();
      if (inUse + cost.encoderSessions > node.systemEncoderSessionLimit) return false;
    }
    return true;
  }

  /** The first GPU that fits, scanning non-empty buckets from `firstBucket` up to the emptiest. */
  private walkUp(
    pool: Pool,
    dimension: Dimension,
    firstBucket: number,
    cost: LoadVector,
    request: PlacementRequest,
  ): GpuSlot | undefined {
    const buckets = pool.buckets[dimension]!;
    const bits = pool.nonEmpty;
    const base = dimension * bitmapWords;
    const firstWord = firstBucket >>> 5;
    for (let w = firstWord; w < bitmapWords; w++) {
      let word = bits[base + w]!;
      if (w === firstWord) word &= -1 << (firstBucket & 31);
      while (word !== 0) {
        const lowest = word & -word;
        word ^= lowest;
        const found = this.scan(buckets[(w << 5) + 31 - Math.clz32(lowest)]!, cost, request);
        if (found) return found;
      }
    }
    return undefined;
  }

  /** The first GPU that fits, scanning non-empty buckets from the emptiest down to `firstBucket`. */
  private walkDown(
    pool: Pool,
    dimension: Dimension,
    firstBucket: number,
    cost: LoadVector,
    request: PlacementRequest,
  ): GpuSlot | undefined {
    const buckets = pool.buckets[dimension]!;
    const bits = pool.nonEmpty;
    const base = dimension * bitmapWords;
    const firstWord = firstBucket >>> 5;
    for (let w = bitmapWords - 1; w >= firstWord; w--) {
      let word = bits[base + w]!;
      if (w === firstWord) word &= -1 << (firstBucket & 31);
      while (word !== 0) {
        const bit = 31 - Math.clz32(word);
        word &= ~(1 << bit);
        const found = this.scan(buckets[(w << 5) + bit]!, cost, request);
        if (found) return found;
      }
    }
    return undefined;
  }

  private scan(bucket: readonly GpuSlot[], cost: LoadVector, request: PlacementRequest): GpuSlot | undefined {
    const excludeNodeId = request.excludeNodeId;
    const labels = request.labels;
    for (let i = 0; i < bucket.length; i++) {
      const gpu = bucket[i]!;
      if (excludeNodeId !== undefined && gpu.node.id === excludeNodeId) continue;
      if (labels && !labelsMatch(gpu.node.labels, labels)) continue;
      if (this.fits(gpu, cost)) return gpu;
    }
    return undefined;
  }

  private poolFor(gpu: GpuSlot): Pool {
    const region = gpu.node.labels.region ?? '';
    const key = `${gpu.model.name}\u0000${region}`;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new Pool(gpu.model.name, region, gpu.model.vramMiB, this.headroom.vram);
      this.pools.set(key, pool);
      this.poolList.push(pool);
    }
    return pool;
  }

  /** Free share of `gpu` on dimension `d`, relative to the pool's capacity under headroom. */
  private freeShare(gpu: GpuSlot, pool: Pool, d: Dimension): number {
    if (d === 0) return (this.gpuCapacity - gpu.effectiveGpu()) / this.gpuCapacity;
    if (d === 1) return (this.encoderCapacity - gpu.effectiveEncoder()) / this.encoderCapacity;
    return (Math.floor(this.headroom.vram * gpu.memoryTotalMiB) - gpu.effectiveVramMiB()) / pool.vramCapacity;
  }

  private insert(pool: Pool, d: Dimension, bucketIndex: number, gpu: GpuSlot, entry: IndexEntry): void {
    const bucket = pool.buckets[d]![bucketIndex]!;
    entry.buckets[d] = bucketIndex;
    entry.positions[d] = bucket.length;
    bucket.push(gpu);
    if (bucket.length === 1) pool.nonEmpty[d * bitmapWords + (bucketIndex >>> 5)]! |= 1 << (bucketIndex & 31);
  }

  /** Swap-remove: O(1), the last GPU of the bucket takes the freed position. */
  private remove(pool: Pool, d: Dimension, gpu: GpuSlot, entry: IndexEntry): void {
    const bucketIndex = entry.buckets[d]!;
    const bucket = pool.buckets[d]![bucketIndex]!;
    const position = entry.positions[d]!;
    const last = bucket.pop()!;
    if (last !== gpu) {
      bucket[position] = last;
      (last.placementEntry as IndexEntry).positions[d] = position;
    }
    if (bucket.length === 0) {
      pool.nonEmpty[d * bitmapWords + (bucketIndex >>> 5)]! &= ~(1 << (bucketIndex & 31));
    }
  }
}

function labelsMatch(
  nodeLabels: Readonly<Record<string, string>>,
  wanted: Readonly<Record<string, string>>,
): boolean {
  for (const key in wanted) if (nodeLabels[key] !== wanted[key]) return false;
  return true;
}
