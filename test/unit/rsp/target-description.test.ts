// Target descriptions: XML parsing, includes spliced in place, GDB register numbering.
import { RspParseError, loadTargetDescription, parseTargetXml } from "../../../src/rsp";

const TARGET = `<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target><architecture>aarch64</architecture><xi:include href="core.xml"/><xi:include href="fpu.xml"/><xi:include href="sys.xml"/></target>`;

const CORE = `<?xml version="1.0"?>
<!-- Copyright (C) 2009-2012 Free Software Foundation, Inc.
     <reg name="not-a-register" bitsize="8"/> inside a comment -->
<!DOCTYPE feature SYSTEM "gdb-target.dtd">
<feature name="org.gnu.gdb.aarch64.core">
  <reg name="x0" bitsize="64"/>
  <reg name="x1" bitsize="64"/>
  <reg name="sp" bitsize="64" type="data_ptr"/>
  <reg name="pc" bitsize="64" type="code_ptr"/>
  <flags id="cpsr_flags" size="4">
    <field name="SP" start="0" end="0"/>
  </flags>
  <reg name="cpsr" bitsize="32" type="cpsr_flags"/>
</feature>`;

const FPU = `<?xml version='1.0'?>
<feature name='org.gnu.gdb.aarch64.fpu'>
  <vector id="v2d" type="ieee_double" count="2"/>
  <union id="vnd"><field name="d" type="v2d"/></union>
  <reg name="v0" bitsize="128" type="vnd" regnum="34"/>
  <reg name="v1" bitsize="128" type="vnd"/>
  <reg name="fpsr" bitsize="32"/>
</feature>`;

const SYS = `<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><feature name="org.qemu.gdb.arm.sys.regs"><reg name="TTBR0_EL1" bitsize="64" regnum="40" group="cp_regs"/><reg name="SCTLR" bitsize="64" regnum="41" group="cp_regs"/><reg name="A&amp;B" bitsize="64" group="cp_regs"/></feature>`;

const files: Record<string, string> = { "target.xml": TARGET, "core.xml": CORE, "fpu.xml": FPU, "sys.xml": SYS };
const fetch = async (annex: string): Promise<string> => {
  const text = files[annex];
  if (text === undefined) throw new Error(`no ${annex}`);
  return text;
};

describe("parseTargetXml", () => {
  it("lists includes in order and reads the architecture", () => {
    expect(parseTargetXml(TARGET)).toEqual({
      architecture: "aarch64",
      items: [
        { kind: "include", href: "core.xml" },
        { kind: "include", href: "fpu.xml" },
        { kind: "include", href: "sys.xml" },
      ],
    });
  });

  it("reads a feature document's registers and skips type definitions and comments", () => {
    const doc = parseTargetXml(CORE);
    expect(doc.items).toHaveLength(1);
    const feature = doc.items[0];
    if (feature.kind !== "feature") throw new Error("expected a feature");
    expect(feature.name).toBe("org.gnu.gdb.aarch64.core");
    expect(feature.registers.map((r) => r.name)).toEqual(["x0", "x1", "sp", "pc", "cpsr"]);
    expect(feature.registers[4]).toEqual({ name: "cpsr", bitsize: 32, type: "cpsr_flags" });
  });

  it("accepts inline features in a target document", () => {
    const doc = parseTargetXml(`<target version="1.0"><feature name="f"><reg name="r" bitsize="8" regnum="3"/></feature></target>`);
    expect(doc.items).toEqual([{ kind: "feature", name: "f", registers: [{ name: "r", bitsize: 8, regnum: 3 }] }]);
  });

  it.each([
    ["unclosed", "<target><feature name='f'>"],
    ["mismatched", "<target></feature>"],
    ["bad bitsize", "<feature name='f'><reg name='r' bitsize='x'/></feature>"],
    ["no root", "<?xml version='1.0'?>"],
    ["other root", "<html/>"],
  ])("refuses %s XML", (_, xml) => {
    expect(() => parseTargetXml(xml)).toThrow(RspParseError);
  });
});

describe("loadTargetDescription", () => {
  it("numbers registers across includes, continuing from explicit regnums", async () => {
    const desc = await loadTargetDescription(fetch);
    expect(desc.architecture).toBe("aarch64");
    expect(desc.registers.map((r) => [r.name, r.regnum])).toEqual([
      ["x0", 0],
      ["x1", 1],
      ["sp", 2],
      ["pc", 3],
      ["cpsr", 4],
      ["v0", 34],
      ["v1", 35],
      ["fpsr", 36],
      ["TTBR0_EL1", 40],
      ["SCTLR", 41],
      ["A&B", 42],
    ]);
    expect(desc.byName.get("SCTLR")).toEqual({ name: "SCTLR", bitsize: 64, regnum: 41, feature: "org.qemu.gdb.arm.sys.regs", group: "cp_regs" });
    expect(desc.byNumber.get(3)?.name).toBe("pc");
    expect(desc.features.map((f) => f.name)).toEqual(["org.gnu.gdb.aarch64.core", "org.gnu.gdb.aarch64.fpu", "org.qemu.gdb.arm.sys.regs"]);
  });

  it("refuses include cycles and duplicate numbers", async () => {
    const cyclic = async (annex: string): Promise<string> => (annex === "target.xml" ? `<target><xi:include href="target.xml"/></target>` : "");
    await expect(loadTargetDescription(cyclic)).rejects.toThrow(RspParseError);
    const dup = async (): Promise<string> => `<feature name="f"><reg name="a" bitsize="8" regnum="1"/><reg name="b" bitsize="8" regnum="1"/></feature>`;
    await expect(loadTargetDescription(dup)).rejects.toThrow(/duplicate regnum/);
  });
});
