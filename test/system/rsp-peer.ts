// A minimal gdb for packet-level tests of the gdb bridge, built from src/rsp.
import { type Socket, connect as connectTcp } from "node:net";
import { bytesToLatin1, createFramer, encodePacket } from "../../src/rsp";

/** A minimal gdb: sends packets, acks replies (until no-ack mode), queues what the bridge sends. */
export class RspPeer {
  private readonly framer = createFramer();
  private readonly packets: string[] = [];
  private waiters: (() => void)[] = [];
  noAck = false;
  acks = 0;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      for (const e of this.framer.push(chunk)) {
        if (e.type === "ack") this.acks++;
        if (e.type !== "packet") continue;
        if (!this.noAck) socket.write("+");
        this.packets.push(bytesToLatin1(e.data));
      }
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => undefined);
  }

  static open(port: number): Promise<RspPeer> {
    return new Promise((resolve, reject) => {
      const s = connectTcp(port, "127.0.0.1", () => resolve(new RspPeer(s)));
      s.once("error", reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The next packet the bridge sends (undefined once the connection is closed and drained). */
  async next(timeoutMs = 20_000): Promise<string | undefined> {
    const end = Date.now() + timeoutMs;
    while (this.packets.length === 0) {
      if (this.closed) return undefined;
      if (Date.now() > end) throw new Error("no packet from the bridge in time");
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return this.packets.shift();
  }

  send(payload: string | Uint8Array): void {
    this.socket.write(encodePacket(payload));
  }

  async request(payload: string | Uint8Array): Promise<string | undefined> {
    this.send(payload);
    return this.next();
  }

  /** The answer to `payload`; throws if the bridge closes the connection instead. */
  async ask(payload: string): Promise<string> {
    const answer = await this.request(payload);
    if (answer === undefined) throw new Error(`the bridge closed the connection (after ${payload})`);
    return answer;
  }

  close(): void {
    this.socket.destroy();
  }
}
