// VmService with two VMs: listing, describing, attachments, and the `vm` field's resolution.
import { Status } from "nice-grpc";
import { expectRpcError, startHarness, type Harness } from "./harness";

/** These tests pin the unary session rules (leases, session ids); the stream has its own tests. */
const UNARY = { transport: "unary" } as const;

describe("VmService with two VMs", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ vmIds: ["beta", "alpha"], vpCount: 1 });
  });
  afterAll(async () => {
    await h.close();
  });

  it("lists the VMs ordered by id with their architecture, VPs, memory, run state and backend", async () => {
    const vms = await h.client.listVms();
    expect(vms).toEqual(
      ["alpha", "beta"].map((id) => ({
        id,
        arch: "x86_64",
        vpCount: 1,
        memoryRegions: [{ gpa: 0n, size: 256n << 20n, name: "ram" }],
        runState: "running",
        backend: "emu",
        capabilities: expect.objectContaining({ hardwareSlotsPerVp: 4 }),
      })),
    );
  });

  it("refuses an empty vm with INVALID_ARGUMENT / VM_AMBIGUOUS when several VMs are served", async () => {
    const err = await expectRpcError(h.client.getVm(), Status.INVALID_ARGUMENT, "VM_AMBIGUOUS", { vms: "alpha,beta" });
    expect(err.message).toContain("alpha, beta");
    await expectRpcError(h.client.attach("", UNARY), Status.INVALID_ARGUMENT, "VM_AMBIGUOUS");
    await expectRpcError(h.client.rpc.debug.attach({ vm: "" }), Status.INVALID_ARGUMENT, "VM_AMBIGUOUS");
    expect((await h.client.listVms()).every((vm) => vm.attached === undefined)).toBe(true);
  });

  it("shows the attachment of the VM a session controls, and Break stops only that VM", async () => {
    const before = Date.now();
    const s = await h.client.attach("beta", UNARY);
    try {
      const beta = await h.client.getVm("beta");
      expect(beta.attached?.holder).toMatch(/127\.0\.0\.1/);
      expect(beta.attached!.attachedAt.getTime()).toBeGreaterThanOrEqual(before - 5);
      expect(beta.attached!.leaseExpiresAt.getTime() - beta.attached!.attachedAt.getTime()).toBeGreaterThanOrEqual(29_000);
      expect((await h.client.getVm("alpha")).attached).toBeUndefined();
      await s.break();
      expect((await h.client.getVm("beta")).runState).toBe("stopped");
      expect((await h.client.getVm("alpha")).runState).toBe("running");
      // Another debugger may attach to the other VM.
      const a = await h.client.attach("alpha", UNARY);
      await a.detach();
    } finally {
      await s.detach();
    }
    expect((await h.client.getVm("beta")).runState).toBe("running");
  });
});
