/**
 * The simulation's agenda: events ordered by virtual time, ties in the order they were scheduled (so
 * a run is the same every time).
 */
export class EventQueue<T> {
  private readonly times: number[] = [];
  private readonly sequence: number[] = [];
  private readonly items: T[] = [];
  private scheduled = 0;

  get size(): number {
    return this.items.length;
  }

  push(at: number, item: T): void {
    this.times.push(at);
    this.sequence.push(this.scheduled++);
    this.items.push(item);
    this.up(this.items.length - 1);
  }

  /** Time of the next event, or Infinity when none is left. */
  peekTime(): number {
    return this.items.length > 0 ? this.times[0]! : Infinity;
  }

  pop(): { at: number; item: T } | undefined {
    if (this.items.length === 0) return undefined;
    const at = this.times[0]!;
    const item = this.items[0]!;
    const last = this.items.length - 1;
    this.swap(0, last);
    this.times.pop();
    this.sequence.pop();
    this.items.pop();
    if (this.items.length > 0) this.down(0);
    return { at, item };
  }

  private before(a: number, b: number): boolean {
    const ta = this.times[a]!;
    const tb = this.times[b]!;
    return ta < tb || (ta === tb && this.sequence[a]! < this.sequence[b]!);
  }

  private swap(a: number, b: number): void {
    [this.times[a], this.times[b]] = [this.times[b]!, this.times[a]!];
    [this.sequence[a], this.sequence[b]] = [this.sequence[b]!, this.sequence[a]!];
    [this.items[a], this.items[b]] = [this.items[b]!, this.items[a]!];
  }

  private up(at: number): void {
    let child = at;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if (!this.before(child, parent)) return;
      this.swap(child, parent);
      child = parent;
    }
  }

  private down(at: number): void {
    let parent = at;
    for (;;) {
      const left = 2 * parent + 1;
      const right = left + 1;
      let first = parent;
      if (left < this.items.length && this.before(left, first)) first = left;
      if (right < this.items.length && this.before(right, first)) first = right;
      if (first === parent) return;
      this.swap(parent, first);
      parent = first;
    }
  }
}
