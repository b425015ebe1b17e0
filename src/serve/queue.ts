/**
 * One-at-a-time admission to the engine. The native engine has one caller at a time, so requests that
 * need it wait here in arrival order; the wait list is bounded so a flood gets a quick "busy" answer
 * instead of unbounded memory and latency. A waiter whose client goes away leaves the line.
 */
export class QueueFull extends Error {}

export interface Ticket {
  /** Resolves when it is this request's turn; rejects with the signal's reason if it is aborted first. */
  ready: Promise<void>;
  /** Frees the engine, or the place in line. Safe to call more than once. */
  release(): void;
}

interface Entry {
  state: "waiting" | "running" | "done";
  grant(): void;
  refuse(reason: unknown): void;
}

export class EngineQueue {
  private busy = false;
  private readonly waiting: Entry[] = [];
  private readonly idleWaiters: (() => void)[] = [];

  /** capacity: how many requests may wait while one runs. */
  constructor(readonly capacity: number) {}

  get running(): number {
    return this.busy ? 1 : 0;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Takes a place in line now (throws QueueFull when the line is full), so callers can answer 429 before streaming. */
  enter(signal: AbortSignal): Ticket {
    if (this.busy && this.waiting.length >= this.capacity) throw new QueueFull(`the server is busy: ${this.capacity} requests are already waiting`);
    let entry!: Entry;
    const ready = new Promise<void>((grant, refuse) => {
      entry = { state: "waiting", grant, refuse };
    });
    const onAbort = () => this.leave(entry, signal.reason);
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(entry);
      this.pump();
    }
    return {
      ready,
      release: () => {
        signal.removeEventListener("abort", onAbort);
        if (entry.state === "running") {
          entry.state = "done";
          this.busy = false;
          this.pump();
        } else this.leave(entry, new DOMException("released before its turn", "AbortError"));
      },
    };
  }

  /** A running request is not stopped here: it sees its own signal and releases. */
  private leave(entry: Entry, reason: unknown): void {
    if (entry.state !== "waiting") return;
    const i = this.waiting.indexOf(entry);
    if (i >= 0) this.waiting.splice(i, 1);
    entry.state = "done";
    entry.refuse(reason);
  }

  /** Resolves once nothing runs or waits (after a shutdown has aborted the requests in flight). */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    if (this.busy) return;
    const e = this.waiting.shift();
    if (!e) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      return;
    }
    this.busy = true;
    e.state = "running";
    e.grant();
  }
}
