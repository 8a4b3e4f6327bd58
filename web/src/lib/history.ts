// Undo and redo over snapshots of the drawing. Only a person's edits are steps: a burst of them
// (a drag, typing in a field) is one step, recorded once the drawing has settled. Any other change
// (a draft restored after a reload, a late server response, an undo being applied) moves the
// baseline without a step, however late it comes.

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

export class UndoRecorder<T> {
  private readonly history: History<T>;
  /** The drawing as it was before the edit under way: what an undo goes back to. */
  private baseline: T | null = null;
  /** A person's edit is under way and has not settled yet. */
  private burst = false;
  /** A person's edit was just made; the next change of the drawing is theirs. */
  private editing = false;

  constructor(
    private readonly same: (a: T, b: T) => boolean,
    limit = 100,
  ) {
    this.history = new History<T>(limit);
  }

  /** Call just before applying a person's edit (adding, moving, wiring, typing a setting…). */
  edit(): void {
    this.editing = true;
  }

  /** The drawing changed to `now`. True when it is a person's edit: call `settle` once it rests. */
  changed(now: T): boolean {
    if (this.editing || this.burst) {
      this.editing = false;
      this.burst = true;
      return true;
    }
    this.baseline = now;
    return false;
  }

  /** The edit under way is over: the drawing before it becomes an undo step. */
  settle(now: T): void {
    if (this.burst && this.baseline !== null && !this.same(this.baseline, now)) this.history.record(this.baseline);
    this.baseline = now;
    this.burst = false;
  }

  /** The drawing to show instead of `now`, or undefined when there is nothing to undo. */
  undo(now: T): T | undefined {
    return this.travel(this.history.undo.bind(this.history), now);
  }

  redo(now: T): T | undefined {
    return this.travel(this.history.redo.bind(this.history), now);
  }

  /** A new document: no steps, and `now` as the baseline. */
  reset(now: T): void {
    this.history.clear();
    this.baseline = now;
    this.burst = false;
    this.editing = false;
  }

  private travel(step: (present: T) => T | undefined, now: T): T | undefined {
    // An edit made in the last moments is a step of its own.
    this.settle(now);
    const target = step(now);
    if (target !== undefined) this.baseline = target;
    this.editing = false;
    return target;
  }
}
