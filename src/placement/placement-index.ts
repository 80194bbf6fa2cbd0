/**
 * The placement index. Eligible GPUs are grouped in pools (same model, same region); inside a pool
 * each GPU sits in one cell of a 64 x 64 grid by its free render share (row) and its free "stream"
 * share (column): the smaller of its free encoder share and free VRAM share, all under headroom.
 * Bitmaps say which rows, columns and cells are non-empty.
 *
 * A decision needs no scan of GPUs: for each pool it computes the first cell, in strategy order, whose
 * lower bounds already cover the request on both dimensions (a "sure" cell), compares pools by that
 * cell alone, and only then reads GPUs of the winning cell (the first one normally fits; encoder
 * session and label constraints are checked exactly). Packed walks the request's dominant axis upward from the
 * tightest sure row (best fit to within 1/64 of a GPU), spread walks it downward from the emptiest.
 * Only when no sure cell holds a fitting GPU does it fall back to checking the boundary cells
 * exactly, so "nothing fits" is always exact. Updates are O(1): a GPU changes cell only when its load
 * or eligibility changes.
 */

import { capacityShare, type LoadVector } from '../cost/session-cost.js';
import type { GpuChangeListener } from '../fleet/fleet-state.js';
import type { GpuSlot, Headroom } from '../fleet/gpu-slot.js';
import { clearBit, highestBelow, lowestAtLeast, setBit } from './bit-set-64.js';
import type { PlacementStrategy } from './strategy.js';

/** Buckets per axis: a free share s in [0, 1] falls in bucket floor(s * 64) (1.0 in the last). */
export const axis = 64;

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
  cell: number;
  position: number;
}

class Pool {
  readonly modelName: string;
  readonly region: string;
  /** cells[row * 64 + column]: GPUs with that free render (row) and free encoder (column) bucket. */
  readonly cells: Array<GpuSlot[] | undefined> = new Array(axis * axis);
  /** Per row: non-empty columns (2 words each). Per column: non-empty rows. */
  readonly rowCells = new Uint32Array(axis * 2);
  readonly columnCells = new Uint32Array(axis * 2);
  /** Non-empty rows, non-empty columns (2 words each), and how many cells each holds. */
  readonly rows = new Uint32Array(2);
  readonly columns = new Uint32Array(2);
  readonly cellsInRow = new Uint16Array(axis);
  readonly cellsInColumn = new Uint16Array(axis);
  size = 0;
  /** VRAM under headroom of this model: a request's VRAM need is a share of it. */
  readonly vramCapacity: number;
  /** Scratch state of the decision in progress, reused so a decision allocates nothing. */
  readonly search: PoolSearch;

  constructor(modelName: string, region: string, vramCapacity: number, zeroCost: LoadVector) {
    this.modelName = modelName;
    this.region = region;
    this.vramCapacity = vramCapacity;
    this.search = {
      pool: this,
      cost: zeroCost,
      streamPrimary: false,
      primaryNeed: 0,
      surePrimary: 0,
      sureSecondary: 0,
      visited: null,
      cell: -1,
      primaryBucket: -1,
    };
  }
}

/** Where a pool's search stands: the request's needs as buckets, on its primary and secondary axis. */
interface PoolSearch {
  pool: Pool;
  cost: LoadVector;
  /** True when encoder or VRAM is the request's dominant need in this pool (walk columns). */
  streamPrimary: boolean;
  primaryNeed: number;
  /** First bucket on each axis whose lower bound covers the need. */
  surePrimary: number;
  sureSecondary: number;
  /** Cells of this pool already visited without success in this decision. */
  visited: Set<number> | null;
  /** Candidate cell (row * 64 + column) and its primary bucket, or -1. */
  cell: number;
  primaryBucket: number;
}

/** The bucket of a free share on one axis of a pool's grid. */
export function bucketOf(share: number): number {
  if (!(share > 0)) return 0;
  if (share >= 1) return axis - 1;
  return Math.floor(share * axis);
}

/** First bucket b with b / 64 >= share, i.e. every GPU in it has at least `share` free. */
export function sureBucket(share: number): number {
  return Math.max(0, Math.ceil(share * axis - 1e-9));
}

export class PlacementIndex implements GpuChangeListener {
  private readonly headroom: Headroom;
  private readonly pools = new Map<string, Pool>();
  private readonly poolList: Pool[] = [];
  /** Scratch list of the pools searched by the decision in progress. */
  private readonly searches: PoolSearch[] = [];
  private readonly gpuCapacity: number;
  private readonly encoderCapacity: number;

  constructor(headroom: Headroom) {
    this.headroom = headroom;
    this.gpuCapacity = capacityShare(headroom.gpu);
    this.encoderCapacity = capacityShare(headroom.encoder);
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
    const cell = this.cellOf(gpu, pool);
    if (!entry) {
      const created: IndexEntry = { pool, cell, position: 0 };
      gpu.placementEntry = created;
      this.insert(pool, cell, gpu, created);
      pool.size++;
      return;
    }
    if (entry.cell !== cell) {
      this.remove(entry.pool, gpu, entry);
      this.insert(entry.pool, cell, gpu, entry);
    }
  }

  gpuRemoved(gpu: GpuSlot): void {
    const entry = gpu.placementEntry as IndexEntry | undefined;
    if (!entry) return;
    this.remove(entry.pool, gpu, entry);
    entry.pool.size--;
    gpu.placementEntry = undefined;
  }

  /** Picks the GPU for a request, or undefined when no eligible GPU fits on every dimension. */
  pick(request: PlacementRequest): PlacementChoice | undefined {
    const packed = request.strategy === 'packed';
    const searches = this.searches;
    searches.length = 0;
    for (const pool of this.poolList) {
      if (pool.size === 0) continue;
      if (request.region !== undefined && pool.region !== request.region) continue;
      const cost = request.costs.get(pool.modelName);
      if (!cost) continue;
      const gpuNeed = cost.gpu / this.gpuCapacity;
      const streamNeed = this.streamNeed(cost, pool);
      if (gpuNeed > 1 || streamNeed > 1) continue;
      const streamPrimary = streamNeed > gpuNeed;
      const search = pool.search;
      search.cost = cost;
      search.streamPrimary = streamPrimary;
      search.primaryNeed = streamPrimary ? streamNeed : gpuNeed;
      search.surePrimary = sureBucket(search.primaryNeed);
      search.sureSecondary = sureBucket(streamPrimary ? gpuNeed : streamNeed);
      search.visited = null;
      this.nextSureCell(search, packed);
      searches.push(search);
    }
    // Sure cells: compare pools by their candidate cell, read GPUs only in the winner's cell.
    for (;;) {
      let best: PoolSearch | undefined;
      let bestScore = 0;
      for (const search of searches) {
        if (search.cell < 0) continue;
        const score = search.primaryBucket / axis - search.primaryNeed;
        if (!best || (packed ? score < bestScore : score > bestScore)) {
          best = search;
          bestScore = score;
        }
      }
      if (!best) break;
      const found = this.firstFitIn(best.pool.cells[best.cell]!, best.cost, request);
      if (found) return { gpu: found, cost: best.cost };
      best.visited ??= new Set();
      best.visited.add(best.cell);
      this.nextSureCell(best, packed);
    }
    return this.pickFromBoundary(searches, packed, request);
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
      let inUse = 0;
      for (const other of node.gpus) inUse += other.effectiveEncoderSessions();
      if (inUse + cost.encoderSessions > node.systemEncoderSessionLimit) return false;
    }
    return true;
  }

  /**
   * Moves `search` to its next sure cell in strategy order (packed: primary ascending, then secondary
   * ascending; spread: both descending), skipping cells already visited; cell -1 when none is left.
   */
  private nextSureCell(search: PoolSearch, packed: boolean): void {
    const { pool, surePrimary, sureSecondary, visited } = search;
    const lines = search.streamPrimary ? pool.columns : pool.rows;
    const lineCells = search.streamPrimary ? pool.columnCells : pool.rowCells;
    let line = packed ? lowestAtLeast(lines, 0, surePrimary) : highestBelow(lines, 0, axis);
    while (line >= 0 && line >= surePrimary) {
      let other = packed
        ? lowestAtLeast(lineCells, line * 2, sureSecondary)
        : highestBelow(lineCells, line * 2, axis);
      while (other >= 0 && other >= sureSecondary) {
        const cell = search.streamPrimary ? other * axis + line : line * axis + other;
        if (!visited?.has(cell)) {
          search.cell = cell;
          search.primaryBucket = line;
          return;
        }
        other = packed
          ? lowestAtLeast(lineCells, line * 2, other + 1)
          : highestBelow(lineCells, line * 2, other);
      }
      line = packed ? lowestAtLeast(lines, 0, line + 1) : highestBelow(lines, 0, line);
    }
    search.cell = -1;
    search.primaryBucket = -1;
  }

  /**
   * The exact fallback: GPUs in cells whose buckets may or may not cover the request (and sure cells
   * that failed on VRAM or labels are skipped). Best by exact free share left on the primary axis.
   */
  private pickFromBoundary(
    searches: readonly PoolSearch[],
    packed: boolean,
    request: PlacementRequest,
  ): PlacementChoice | undefined {
    let best: PlacementChoice | undefined;
    let bestScore = 0;
    for (const search of searches) {
      const { pool, cost } = search;
      // Necessary (not sufficient) bounds: a GPU whose tighter stream share is below the request's
      // smaller stream need (encoder or VRAM) cannot fit; one above it may, so it is checked exactly.
      const gpuNeed = cost.gpu / this.gpuCapacity;
      const streamFloor = Math.min(cost.encoder / this.encoderCapacity, cost.vramMiB / pool.vramCapacity);
      const minPrimary = bucketOf(search.streamPrimary ? streamFloor : gpuNeed);
      const minSecondary = bucketOf(search.streamPrimary ? gpuNeed : streamFloor);
      for (
        let line = lowestAtLeast(search.streamPrimary ? pool.columns : pool.rows, 0, minPrimary);
        line >= 0;
      ) {
        const lineCells = search.streamPrimary ? pool.columnCells : pool.rowCells;
        for (let other = lowestAtLeast(lineCells, line * 2, minSecondary); other >= 0; ) {
          const cell = search.streamPrimary ? other * axis + line : line * axis + other;
          const sure = line >= search.surePrimary && other >= search.sureSecondary;
          if (!sure || !search.visited?.has(cell)) {
            for (const gpu of pool.cells[cell]!) {
              if (!this.allowed(gpu, request) || !this.fits(gpu, cost)) continue;
              const free = search.streamPrimary ? this.streamFree(gpu, pool) : this.gpuFree(gpu);
              const score = free - search.primaryNeed;
              if (!best || (packed ? score < bestScore : score > bestScore)) {
                best = { gpu, cost };
                bestScore = score;
              }
            }
          }
          other = lowestAtLeast(lineCells, line * 2, other + 1);
        }
        line = lowestAtLeast(search.streamPrimary ? pool.columns : pool.rows, 0, line + 1);
      }
    }
    return best;
  }

  private firstFitIn(
    cell: readonly GpuSlot[],
    cost: LoadVector,
    request: PlacementRequest,
  ): GpuSlot | undefined {
    for (let i = 0; i < cell.length; i++) {
      const gpu = cell[i]!;
      if (this.allowed(gpu, request) && this.fits(gpu, cost)) return gpu;
    }
    return undefined;
  }

  private allowed(gpu: GpuSlot, request: PlacementRequest): boolean {
    if (request.excludeNodeId !== undefined && gpu.node.id === request.excludeNodeId) return false;
    const labels = request.labels;
    if (labels) {
      const nodeLabels = gpu.node.labels;
      for (const key in labels) if (nodeLabels[key] !== labels[key]) return false;
    }
    return true;
  }

  private cellOf(gpu: GpuSlot, pool: Pool): number {
    return bucketOf(this.gpuFree(gpu)) * axis + bucketOf(this.streamFree(gpu, pool));
  }

  /** Free render share under headroom. */
  private gpuFree(gpu: GpuSlot): number {
    return (this.gpuCapacity - gpu.effectiveGpu()) / this.gpuCapacity;
  }

  /**
   * The smaller of the free encoder share and the free VRAM share, under headroom. VRAM is measured
   * against the pool's model, like a request's VRAM need, so free >= need exactly when the MiB fit
   * (even where a GPU reports a slightly different memory total than its catalog model).
   */
  private streamFree(gpu: GpuSlot, pool: Pool): number {
    const encoderFree = (this.encoderCapacity - gpu.effectiveEncoder()) / this.encoderCapacity;
    const vramFree =
      (Math.floor(this.headroom.vram * gpu.memoryTotalMiB) - gpu.effectiveVramMiB()) / pool.vramCapacity;
    return Math.min(encoderFree, vramFree);
  }

  /** A request's stream need: the larger of its encoder share and its VRAM share of the pool's model. */
  private streamNeed(cost: LoadVector, pool: Pool): number {
    return Math.max(cost.encoder / this.encoderCapacity, cost.vramMiB / pool.vramCapacity);
  }

  private poolFor(gpu: GpuSlot): Pool {
    const region = gpu.node.labels.region ?? '';
    const key = `${gpu.model.name}\u0000${region}`;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new Pool(gpu.model.name, region, this.headroom.vram * gpu.model.vramMiB, {
        gpu: 0,
        encoder: 0,
        vramMiB: 0,
        encoderSessions: 0,
      });
      this.pools.set(key, pool);
      this.poolList.push(pool);
    }
    return pool;
  }

  private insert(pool: Pool, cell: number, gpu: GpuSlot, entry: IndexEntry): void {
    let members = pool.cells[cell];
    if (!members) {
      members = [];
      pool.cells[cell] = members;
    }
    entry.cell = cell;
    entry.position = members.length;
    members.push(gpu);
    if (members.length === 1) {
      const row = cell >>> 6;
      const column = cell & (axis - 1);
      setBit(pool.rowCells, row * 2, column);
      setBit(pool.columnCells, column * 2, row);
      if (pool.cellsInRow[row]!++ === 0) setBit(pool.rows, 0, row);
      if (pool.cellsInColumn[column]!++ === 0) setBit(pool.columns, 0, column);
    }
  }

  /** Swap-remove: O(1), the last GPU of the cell takes the freed position. */
  private remove(pool: Pool, gpu: GpuSlot, entry: IndexEntry): void {
    const members = pool.cells[entry.cell]!;
    const last = members.pop()!;
    if (last !== gpu) {
      members[entry.position] = last;
      (last.placementEntry as IndexEntry).position = entry.position;
    }
    if (members.length === 0) {
      const row = entry.cell >>> 6;
      const column = entry.cell & (axis - 1);
      clearBit(pool.rowCells, row * 2, column);
      clearBit(pool.columnCells, column * 2, row);
      if (--pool.cellsInRow[row]! === 0) clearBit(pool.rows, 0, row);
      if (--pool.cellsInColumn[column]! === 0) clearBit(pool.columns, 0, column);
    }
  }
}
