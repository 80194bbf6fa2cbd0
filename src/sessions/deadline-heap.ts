/**
 * A min-heap of (deadline, id) with lazy updates: renewing a lease only changes the record; when an
 * outdated entry reaches the top it is re-pushed with the record's current deadline. So renewals are
 * O(1) and expiry is O(log n) per session, never a scan of all sessions. Equal deadlines come out in id
 * order (code unit order, as a Redis sorted set orders equal scores), so both stores end sessions that
 * expire together in the same order.
 */
export class DeadlineHeap {
  private readonly times: number[] = [];
  private readonly ids: string[] = [];

  get size(): number {
    return this.times.length;
  }

  push(time: number, id: string): void {
    this.times.push(time);
    this.ids.push(id);
    this.up(this.times.length - 1);
  }

  peekTime(): number | undefined {
    return this.times[0];
  }

  pop(): { time: number; id: string } | undefined {
    if (this.times.length === 0) return undefined;
    const time = this.times[0]!;
    const id = this.ids[0]!;
    const lastTime = this.times.pop()!;
    const lastId = this.ids.pop()!;
    if (this.times.length > 0) {
      this.times[0] = lastTime;
      this.ids[0] = lastId;
      this.down(0);
    }
    return { time, id };
  }

  private up(index: number): void {
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(index: number): void {
    let i = index;
    const n = this.times.length;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < n && this.before(left, smallest)) smallest = left;
      if (right < n && this.before(right, smallest)) smallest = right;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }

  /** Entry `a` comes out before entry `b`: earlier deadline, or the same one and a smaller id. */
  private before(a: number, b: number): boolean {
    const ta = this.times[a]!;
    const tb = this.times[b]!;
    return ta < tb || (ta === tb && this.ids[a]! < this.ids[b]!);
  }

  private swap(a: number, b: number): void {
    [this.times[a], this.times[b]] = [this.times[b]!, this.times[a]!];
    [this.ids[a], this.ids[b]] = [this.ids[b]!, this.ids[a]!];
  }
}
