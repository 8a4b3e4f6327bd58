// Undo and redo over snapshots of the drawing. A burst of changes (a drag, typing in a field)
// is one step: a snapshot is recorded only when the drawing has settled.

export class History<T> {
  private past: T[] = [];
  private future: T[] = [];

  constructor(private readonly limit = 100) {}

  /** Records the state before a change. */
  record(before: T): void {
    this.past.push(before);
    if (this.past.length > this.limit) this.past.shift();
    this.future = [];
  }

  /** The state to go back to, given the present one; undefined when there is nothing to undo. */
  undo(present: T): T | undefined {
    const previous = this.past.pop();
    if (previous !== undefined) this.future.push(present);
    return previous;
  }

  redo(present: T): T | undefined {
    const next = this.future.pop();
    if (next !== undefined) this.past.push(present);
    return next;
  }

  get canUndo(): boolean {
    return this.past.length > 0;
  }

  get canRedo(): boolean {
    return this.future.length > 0;
  }

  clear(): void {
    this.past = [];
    this.future = [];
  }
}
