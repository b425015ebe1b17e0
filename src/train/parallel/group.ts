/**
 * The ranks of a data-parallel job and their collectives. Rank 0 listens on master-addr:port; every
 * other rank connects to it (a star). The rendezvous checks that all ranks agree on the world size and
 * hands out, for CUDA, the NCCL unique id. Each step, `allreduce` averages the gradients and sums a few
 * scalars (loss and weight sums, tokens, a stop flag): CUDA ranks average gradients with NCCL and send
 * only the scalars over TCP; CPU ranks send everything over TCP, and rank 0 adds the contributions in
 * rank order (0, 1, 2, ...), so the result is the same on every rank and in every run.
 */
import { createServer, type Server } from "node:net";
import { UserError } from "../../errors.ts";
import { type Device, type Model } from "../../engine/index.ts";
import { native, lastError } from "../../engine/ffi.ts";
import { Channel, dial } from "./wire.ts";

export interface Identity {
  rank: number;
  world: number;
  localRank: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
}

interface Hello {
  rank: number;
  world: number;
  node: number;
  device: string;
}
type Welcome = { ok: true; ncclId?: string } | { ok: false; error: string };

/** How long ranks wait for each other to show up. */
const RENDEZVOUS_MS = Number(process.env.NANORAG_RENDEZVOUS_TIMEOUT_MS ?? 120_000);

export class ProcessGroup {
  private constructor(
    readonly id: Identity,
    readonly device: Device,
    /** rank 0: the channel to each rank (index = rank, [0] unused); others: [the channel to rank 0] */
    private readonly peers: Channel[],
    private readonly server: Server | null,
  ) {}

  get rank(): number {
    return this.id.rank;
  }
  get world(): number {
    return this.id.world;
  }
  /** Rank 0 logs, evaluates and saves; the others only train. */
  get lead(): boolean {
    return this.id.rank === 0;
  }

  /** Meets the other ranks (rank 0 waits for all of them) and, on CUDA, sets up NCCL. */
  static async join(id: Identity, device: Device): Promise<ProcessGroup> {
    const deadline = Date.now() + RENDEZVOUS_MS;
    const where = `${id.masterAddr}:${id.masterPort}`;
    if (id.rank !== 0) {
      const ch = await dial(id.masterAddr, id.masterPort, deadline, "rank 0");
      ch.sendJson({ rank: id.rank, world: id.world, node: id.nodeRank, device: device.kind } satisfies Hello);
      const w = await Promise.race([ch.recvJson<Welcome>(), expire(deadline, `rendezvous: rank 0 at ${where} did not answer within ${RENDEZVOUS_MS / 1000}s (is --master-port that of this job?)`)]);
      if (!w.ok) throw new UserError(`rendezvous at ${where}: ${w.error}`);
      if (device.kind === "cuda") ncclInit(Buffer.from(w.ncclId ?? "", "base64"), id);
      return new ProcessGroup(id, device, [ch], null);
    }
    const { server, peers } = await gather(id, device, deadline);
    let ncclId: Buffer | undefined;
    if (device.kind === "cuda") {
      ncclId = Buffer.alloc(128);
      if (native().nr_comm_unique_id(ncclId) !== 0) throw new UserError(`NCCL unique id: ${lastError()}`);
    }
    for (const ch of peers.slice(1)) ch.sendJson({ ok: true, ncclId: ncclId?.toString("base64") } satisfies Welcome);
    if (ncclId) ncclInit(ncclId, id);
    return new ProcessGroup(id, device, peers, server);
  }

  /**
   * Averages the gradients over all ranks in place and returns the element-wise sums of `scalars`
   * (the same on every rank). Called by every rank at the same point of each step.
   */
  async allreduce(model: Model, scalars: number[]): Promise<number[]> {
    const onHost = this.device.kind === "cpu";
    const grads = onHost ? model.grads : new Float32Array(0);
    const mine = pack(scalars, grads);
    let reply: Buffer;
    if (this.lead) {
      const parts = await Promise.all(this.peers.slice(1).map((ch) => ch.recv()));
      parts.forEach((p, i) => {
        if (p.length !== mine.length) throw new UserError(`rank ${i + 1} sent ${p.length} bytes for the all-reduce, rank 0 ${mine.length}: the ranks run different models`);
      });
      reply = sumInRankOrder(mine, parts, scalars.length, this.world);
      for (const ch of this.peers.slice(1)) ch.send(reply);
    } else {
      this.peers[0]!.send(mine);
      reply = await this.peers[0]!.recv();
      if (reply.length !== mine.length) throw new UserError(`rank 0 answered the all-reduce with ${reply.length} bytes, expected ${mine.length}: the ranks run different models`);
    }
    const { sums, values } = unpack(reply, scalars.length);
    if (onHost) grads.set(values);
    else if (native().nr_comm_allreduce_grads(model.handle) !== 0) throw new UserError(`NCCL all-reduce: ${lastError()}`);
    return sums;
  }

  /** Fails on every rank unless all ranks pass the same `value` (e.g. a hash of the config and the initial weights). */
  async agree(what: string, value: string): Promise<void> {
    if (!this.lead) {
      this.peers[0]!.sendJson({ value });
      const r = await this.peers[0]!.recvJson<{ error?: string }>();
      if (r.error) throw new UserError(r.error);
      return;
    }
    const theirs = await Promise.all(this.peers.slice(1).map((ch) => ch.recvJson<{ value: string }>()));
    const odd = theirs.findIndex((t) => t.value !== value);
    const error = odd >= 0 ? `rank ${odd + 1} does not have the same ${what} as rank 0` : undefined;
    for (const ch of this.peers.slice(1)) ch.sendJson({ error });
    if (error) throw new UserError(error);
  }

  close(): void {
    for (const ch of this.peers) ch?.close();
    this.server?.close();
    if (this.device.kind === "cuda") native().nr_comm_free();
  }
}

/** Rejects at `deadline` (ms since the epoch), without keeping the process alive for it. */
function expire(deadline: number, message: string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new UserError(message)), Math.max(0, deadline - Date.now())).unref());
}

function ncclInit(id: Buffer, me: Identity): void {
  if (id.length !== 128) throw new UserError("rendezvous: rank 0 sent no NCCL id");
  if (native().nr_comm_init(id, me.world, me.rank) !== 0) throw new UserError(`NCCL init (rank ${me.rank} of ${me.world}): ${lastError()}`);
}

/** Rank 0: listens until every other rank has said hello, checking that they agree on the world. */
async function gather(id: Identity, device: Device, deadline: number): Promise<{ server: Server; peers: Channel[] }> {
  const peers: Channel[] = new Array(id.world);
  let joined = 0;
  let settle: (e?: Error) => void = () => {};
  const done = new Promise<void>((resolve, reject) => (settle = (e) => (e ? reject(e) : resolve())));
  const refuse = (ch: Channel, error: string) => {
    ch.sendJson({ ok: false, error } satisfies Welcome);
    settle(new UserError(`rendezvous: ${error}`));
  };
  const server = createServer((socket) => {
    const ch = new Channel(socket, `a connecting rank (${socket.remoteAddress})`);
    ch.recvJson<Hello>().then((h) => {
      ch.peer = `rank ${h.rank} (node ${h.node})`;
      if (h.world !== id.world) return refuse(ch, `rank ${h.rank} (node ${h.node}) expects a world of ${h.world} ranks, rank 0 one of ${id.world}; give every node the same --nnodes and --nproc-per-node`);
      if (h.device !== device.kind) return refuse(ch, `rank ${h.rank} (node ${h.node}) runs on the ${h.device}, rank 0 on the ${device.kind}; give every node the same --device (auto falls back to the CPU where no GPU answers)`);
      if (!Number.isInteger(h.rank) || h.rank < 1 || h.rank >= id.world || peers[h.rank]) return refuse(ch, `two processes claim rank ${h.rank} (check --node-rank on each node)`);
      peers[h.rank] = ch;
      if (++joined === id.world - 1) settle();
    }, () => {});
  });
  server.on("error", (e) => settle(new UserError(`rank 0 cannot listen on ${id.masterAddr}:${id.masterPort}: ${e.message}`)));
  server.listen(id.masterPort, id.masterAddr);
  const timer = setTimeout(() => {
    const missing = Array.from({ length: id.world - 1 }, (_, i) => i + 1).filter((r) => !peers[r]);
    settle(new UserError(`rendezvous: ranks ${missing.join(", ")} did not connect to ${id.masterAddr}:${id.masterPort} within ${RENDEZVOUS_MS / 1000}s`));
  }, Math.max(0, deadline - Date.now()));
  if (id.world === 1) settle();
  try {
    await done;
  } finally {
    clearTimeout(timer);
  }
  return { server, peers };
}

/** [n scalars as float64][gradients as float32] */
function pack(scalars: number[], grads: Float32Array): Buffer {
  const b = Buffer.from(new ArrayBuffer(scalars.length * 8 + grads.byteLength)); // own buffer: offset 0, so float64-aligned
  new Float64Array(b.buffer, 0, scalars.length).set(scalars);
  b.set(new Uint8Array(grads.buffer, grads.byteOffset, grads.byteLength), scalars.length * 8);
  return b;
}

function unpack(b: Buffer, n: number): { sums: number[]; values: Float32Array } {
  const aligned = new Uint8Array(b).buffer; // a received frame may start at any byte offset; the copy starts at 0
  return {
    sums: Array.from(new Float64Array(aligned, 0, n)),
    values: new Float32Array(aligned, n * 8, (b.length - n * 8) / 4),
  };
}

/** Scalars summed, gradients summed then divided by the world size; rank 0's part first, then rank 1's, ... */
function sumInRankOrder(mine: Buffer, others: Buffer[], n: number, world: number): Buffer {
  const acc = unpack(mine, n);
  const sums = acc.sums;
  const g = acc.values;
  for (const p of others) {
    const o = unpack(p, n);
    for (let i = 0; i < n; i++) sums[i]! += o.sums[i]!;
    const v = o.values;
    for (let i = 0; i < g.length; i++) g[i]! += v[i]!;
  }
  const inv = 1 / world;
  for (let i = 0; i < g.length; i++) g[i]! *= inv;
  return pack(sums, g);
}

