/**
 * Length-prefixed messages over one TCP connection (node:net), for the rendezvous and the CPU
 * all-reduce. A closed or failed connection rejects every pending and later receive with PeerLost,
 * so a rank whose peer died stops instead of waiting for ever.
 */
import { connect, type Socket } from "node:net";
import { UserError } from "../../errors.ts";

/** Exit code of a worker that stopped because another rank went away (the launcher blames that one instead). */
export const PEER_LOST_EXIT = 3;

export class PeerLost extends UserError {
  constructor(message: string) {
    super(message, PEER_LOST_EXIT);
    this.name = "PeerLost";
  }
}

export class Channel {
  #chunks: Buffer[] = [];
  #have = 0;
  #frames: Buffer[] = [];
  #waiting: { resolve: (b: Buffer) => void; reject: (e: Error) => void }[] = [];
  #lost: PeerLost | null = null;

  /** `peer` names the other side in errors ("rank 1", "the master 10.0.0.1:29500"). */
  constructor(
    readonly socket: Socket,
    public peer: string,
  ) {
    socket.setNoDelay(true);
    socket.on("data", (d: Buffer) => this.#onData(d));
    socket.on("error", (e) => this.#fail(`lost the connection to ${this.peer}: ${e.message}`));
    socket.on("close", () => this.#fail(`lost the connection to ${this.peer} (it closed; see its error)`));
  }

  #onData(d: Buffer): void {
    this.#chunks.push(d);
    this.#have += d.length;
    for (;;) {
      if (this.#have < 4) return;
      if (this.#chunks[0]!.length < 4) this.#chunks = [Buffer.concat(this.#chunks)];
      const len = this.#chunks[0]!.readUInt32LE(0);
      if (this.#have < 4 + len) return;
      const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
      const frame = all.subarray(4, 4 + len);
      const rest = all.subarray(4 + len);
      this.#chunks = rest.length ? [rest] : [];
      this.#have = rest.length;
      const w = this.#waiting.shift();
      if (w) w.resolve(frame);
      else this.#frames.push(frame);
    }
  }

  #fail(message: string): void {
    if (this.#lost) return;
    this.#lost = new PeerLost(message);
    for (const w of this.#waiting.splice(0)) w.reject(this.#lost);
  }

  send(payload: Uint8Array): void {
    if (this.#lost) throw this.#lost;
    const head = Buffer.alloc(4);
    head.writeUInt32LE(payload.length, 0);
    this.socket.write(head);
    this.socket.write(payload);
  }

  recv(): Promise<Buffer> {
    const f = this.#frames.shift();
    if (f) return Promise.resolve(f);
    if (this.#lost) return Promise.reject(this.#lost);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  sendJson(v: unknown): void {
    this.send(Buffer.from(JSON.stringify(v)));
  }

  async recvJson<T>(): Promise<T> {
    return JSON.parse((await this.recv()).toString("utf8")) as T;
  }

  close(): void {
    this.#lost ??= new PeerLost(`the connection to ${this.peer} was closed`);
    this.socket.end();
  }
}

/** Connects to host:port, retrying refused connections until `deadline` (ms since the epoch): the listener may start later. */
export async function dial(host: string, port: number, deadline: number, peer: string): Promise<Channel> {
  for (;;) {
    try {
      const socket = await new Promise<Socket>((resolve, reject) => {
        const s = connect({ host, port }, () => resolve(s));
        s.once("error", reject);
      });
      socket.removeAllListeners("error");
      return new Channel(socket, peer);
    } catch (e) {
      if (Date.now() > deadline) throw new UserError(`cannot reach ${peer} at ${host}:${port}: ${(e as Error).message}`);
      await Bun.sleep(100);
    }
  }
}
