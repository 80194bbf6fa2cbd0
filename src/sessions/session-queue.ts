/**
 * The waiting queue: one FIFO per priority class, highest class first. Positions are 1-based across
 * classes and recomputed lazily, in one ordered walk, only after the queue changed.
 */
export class SessionQueue {
  private readonly classes: Map<string, Map<string, true>>;
  private positions = new Map<string, number>();
  private dirty = false;

  /** `priorityClasses` highest first. */
  constructor(priorityClasses: readonly string[]) {
    this.classes = new Map(priorityClasses.map((name) => [name, new Map<string, true>()]));
  }

  get length(): number {
    let total = 0;
    for (const entries of this.classes.values()) total += entries.size;
    return total;
  }

  /** True when `priority` is one of the configured classes. */
  hasClass(priority: string): boolean {
    return this.classes.has(priority);
  }

  has(id: string): boolean {
    for (const entries of this.classes.values()) if (entries.has(id)) return true;
    return false;
  }

  /** Appends to the back of its class, or to the front when `atFront` (a migrated session waits first). */
  add(id: string, priority: string, atFront = false): void {
    const entries = this.classes.get(priority);
    if (!entries) throw new Error(`unknown priority class ${priority}`);
    if (atFront) {
      const rest = [...entries.keys()];
      entries.clear();
      entries.set(id, true);
      for (const other of rest) entries.set(other, true);
    } else {
      entries.set(id, true);
    }
    this.dirty = true;
  }

  remove(id: string): boolean {
    for (const entries of this.classes.values()) {
      if (entries.delete(id)) {
        this.dirty = true;
        return true;
      }
    }
    return false;
  }

  /** Ids in service order: classes by priority, FIFO inside a class. */
  *inOrder(): IterableIterator<string> {
    for (const entries of this.classes.values()) yield* entries.keys();
  }

  position(id: string): number | undefined {
    return this.allPositions().get(id);
  }

  allPositions(): ReadonlyMap<string, number> {
    if (this.dirty) {
      const positions = new Map<string, number>();
      let position = 0;
      for (const id of this.inOrder()) positions.set(id, ++position);
      this.positions = positions;
      this.dirty = false;
    }
    return this.positions;
  }
}
