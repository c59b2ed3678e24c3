// The gdbstub and QMP clients against scripted fake peers: whatever a peer sends, and whatever a
// listener of ours does, ends that connection with a reason — nothing escapes into the process.
import { type Server, type Socket, createServer } from "node:net";
import { createFramer, encodePacket } from "../../../src/rsp";
import { createQmpClient } from "../../../src/qemu/qmp-client";
import { type RspClient, createRspClient } from "../../../src/qemu/rsp-client";
import { RspConnectionClosed } from "../../../src/qemu/rsp-errors";

/** Errors that reached the process (an exception thrown in a socket callback lands here). */
const escaped: unknown[] = [];
const onEscape = (e: unknown): void => void escaped.push(e);

beforeAll(() => {
  process.on("uncaughtException", onEscape);
  process.on("unhandledRejection", onEscape);
});
afterAll(() => {
  process.off("uncaughtException", onEscape);
  process.off("unhandledRejection", onEscape);
});

interface Fake {
  server: Server;
  port: number;
  /** The client's connection, once it connected. */
  peer: Promise<Socket>;
}

async function listen(onConnection: (socket: Socket) => void): Promise<Fake> {
  let resolvePeer!: (s: Socket) => void;
  const peer = new Promise<Socket>((r) => (resolvePeer = r));
  const server = createServer((socket) => {
    resolvePeer(socket);
    onConnection(socket);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as { port: number }).port, peer };
}

async function closeFake(fake: Fake): Promise<void> {
  (await Promise.race([fake.peer, Promise.resolve(undefined)]))?.destroy();
  await new Promise<void>((r) => fake.server.close(() => r()));
}

/**
 * A gdbstub that acknowledges every packet, answers the handshake (no target description), and
 * hands `vCont;c` to `onContinue` to answer as it likes.
 */
function fakeGdbstub(onContinue: (send: (payload: string) => void) => void): Promise<Fake> {
  return listen((socket) => {
    const framer = createFramer();
    const send = (payload: string): void => void socket.write(encodePacket(payload));
    socket.on("data", (chunk: Buffer) => {
      for (const event of framer.push(chunk)) {
        if (event.type !== "packet") continue;
        socket.write("+");
        const request = Buffer.from(event.data).toString("latin1");
        if (request.startsWith("qSupported")) send("PacketSize=1000;vContSupported+;multiprocess+");
        else if (request === "vCont?") send("vCont;c;C;s;S");
        else if (request === "vCont;c") onContinue(send);
        else send("");
      }
    });
  });
}

async function connectRsp(fake: Fake): Promise<RspClient> {
  return createRspClient({ host: "127.0.0.1", port: fake.port }, { loadTargetDescription: false, requestTimeoutMs: 2000 });
}

describe("gdbstub client edges", () => {
  beforeEach(() => (escaped.length = 0));

  it("a garbage stop reply ends the pending continue and the connection with a protocol error", async () => {
    const fake = await fakeGdbstub((send) => send("T05thread:zz;"));
    try {
      const rsp = await connectRsp(fake);
      const closed = new Promise<RspConnectionClosed>((r) => rsp.once("close", r));
      await expect(rsp.continue()).rejects.toMatchObject({ code: "protocol", message: expect.stringMatching(/unparsable stop reply/) });
      expect(await closed).toBeInstanceOf(RspConnectionClosed);
      expect(rsp.isClosed).toBe(true);
      expect(escaped).toEqual([]);
    } finally {
      await closeFake(fake);
    }
  });

  it("an odd-length console packet while the VM runs ends the connection instead of throwing into the process", async () => {
    const fake = await fakeGdbstub((send) => send("O123"));
    try {
      const rsp = await connectRsp(fake);
      await expect(rsp.continue()).rejects.toMatchObject({ code: "protocol", message: expect.stringMatching(/failed handling the gdbstub's data/) });
      expect(rsp.isClosed).toBe(true);
      expect(escaped).toEqual([]);
    } finally {
      await closeFake(fake);
    }
  });

  it("a stop listener that throws costs the connection, with the throw as the cause, not the process", async () => {
    const fake = await fakeGdbstub(() => undefined);
    try {
      const rsp = await connectRsp(fake);
      rsp.on("stop", () => {
        throw new Error("listener bug");
      });
      const closed = new Promise<RspConnectionClosed>((r) => rsp.once("close", r));
      (await fake.peer).write(encodePacket("T02thread:p01.01;")); // unprompted, as a QMP stop makes it
      const reason = await closed;
      expect(reason.message).toMatch(/listener bug/);
      expect(escaped).toEqual([]);
    } finally {
      await closeFake(fake);
    }
  });
});

describe("QMP client edges", () => {
  beforeEach(() => (escaped.length = 0));

  /** A QMP server that greets, accepts qmp_capabilities, answers nothing else, and lets the test send events. */
  function fakeQmp(): Promise<Fake> {
    return listen((socket) => {
      socket.write(JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: "" }, capabilities: [] } }) + "\r\n");
      socket.on("data", (chunk: Buffer) => {
        for (const line of chunk.toString().split("\r\n")) {
          if (!line.trim()) continue;
          const { execute, id } = JSON.parse(line) as { execute: string; id: number };
          if (execute === "qmp_capabilities") socket.write(JSON.stringify({ return: {}, id }) + "\r\n");
        }
      });
    });
  }

  it("an event listener that throws closes the connection with the throw as the cause, not the process", async () => {
    const fake = await fakeQmp();
    try {
      const qmp = await createQmpClient({ host: "127.0.0.1", port: fake.port });
      qmp.onEvent("STOP", () => {
        throw new Error("listener bug");
      });
      const closed = new Promise<Error>((r) => qmp.once("closed", r));
      (await fake.peer).write(JSON.stringify({ event: "STOP", data: {}, timestamp: { seconds: 0, microseconds: 0 } }) + "\r\n");
      expect((await closed).message).toMatch(/listener bug/);
      expect(qmp.isClosed).toBe(true);
      expect(escaped).toEqual([]);
    } finally {
      await closeFake(fake);
    }
  });

  it("a stream that is not JSON objects ends the connection with a protocol error", async () => {
    const fake = await fakeQmp();
    try {
      const qmp = await createQmpClient({ host: "127.0.0.1", port: fake.port });
      const pending = qmp.execute("query-status").catch((e: Error) => e);
      const closed = new Promise<Error>((r) => qmp.once("closed", r));
      (await fake.peer).write("not json\r\n");
      expect((await closed).message).toMatch(/not JSON objects/);
      expect(await pending).toMatchObject({ code: "connection-closed" });
      expect(escaped).toEqual([]);
    } finally {
      await closeFake(fake);
    }
  });
});
