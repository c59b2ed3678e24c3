// The machine-readable known differences (guests/c/known-differences.json) and how they apply.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { FLAG_BITS, type DecodedInsn } from "./disasm";

export const KNOWN_DIFFERENCES_PATH = resolve(__dirname, "../../guests/c/known-differences.json");

interface Rule {
  id: string;
  kind: "undefined-flags" | "ignore-flags" | "sync-registers" | "console-ignore" | "delivery-split" | "end-lockstep";
  /** delivery-split: the guest's exception entry points (function symbols). */
  handlers?: string[];
  /** end-lockstep: lockstep ends (as known) when the machines part at an instruction in one of these functions. */
  functions?: string[];
  mnemonics?: string[];
  operandBits?: number;
  flags?: string[];
  registers?: string[];
  pattern?: string;
  reason: string;
}

/** gp index (RAX RCX RDX RBX RSP RBP RSI RDI R8-R15) of each name. */
export const GP_NAMES = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

export class KnownDifferences {
  readonly rules: Rule[];
  constructor(path = KNOWN_DIFFERENCES_PATH) {
    const json = JSON.parse(readFileSync(path, "utf8")) as { rules: Rule[] };
    this.rules = json.rules;
    for (const r of this.rules) {
      if (!r.id || !r.kind || !r.reason) throw new Error(`${path}: every rule needs id, kind and reason`);
      for (const f of r.flags ?? []) if (!(f in FLAG_BITS)) throw new Error(`${path}: rule ${r.id} names unknown flag ${f}`);
      for (const g of r.registers ?? []) if (!GP_NAMES.includes(g)) throw new Error(`${path}: rule ${r.id} names unknown register ${g}`);
    }
  }

  get masksUndefinedFlags(): boolean {
    return this.rules.some((r) => r.kind === "undefined-flags");
  }

  private matches(r: Rule, insn: DecodedInsn): boolean {
    return (r.mnemonics ?? []).includes(insn.mnemonic) && (r.operandBits === undefined || r.operandBits === insn.operandBits);
  }

  /** RFLAGS bits not compared after `insn` (until defined again), with the rule ids that say so. */
  ignoredFlags(insn: DecodedInsn): { bits: number; rules: string[] } {
    let bits = 0;
    const rules: string[] = [];
    for (const r of this.rules) {
      if (r.kind === "undefined-flags" && insn.undefinedFlags) {
        bits |= insn.undefinedFlags;
        rules.push(r.id);
      } else if (r.kind === "ignore-flags" && this.matches(r, insn)) {
        for (const f of r.flags ?? []) bits |= FLAG_BITS[f];
        rules.push(r.id);
      }
    }
    return { bits, rules };
  }

  /** gp indexes the QEMU VP takes from the embedded machine after `insn`. */
  syncRegisters(insn: DecodedInsn): number[] {
    const out: number[] = [];
    for (const r of this.rules) if (r.kind === "sync-registers" && this.matches(r, insn)) for (const g of r.registers ?? []) out.push(GP_NAMES.indexOf(g));
    return out;
  }

  /** Mnemonics whose instructions need a sync (the harness stops before them). */
  syncMnemonics(): Set<string> {
    return new Set(this.rules.filter((r) => r.kind === "sync-registers").flatMap((r) => r.mnemonics ?? []));
  }

  /**
   * The delivery-split rule's id when `where` (a symbolized RIP, e.g. "db_entry" or
   * "crt0_vectors+0x10") is one of its exception entry points, else undefined.
   */
  deliverySplit(where: string): string | undefined {
    const fn = where.replace(/\+0x[0-9a-f]+$/, "");
    return this.rules.find((r) => r.kind === "delivery-split" && (r.handlers ?? []).includes(fn))?.id;
  }

  /** The id when an end-lockstep rule with that id is listed (the harness knows its condition). */
  endRule(id: string): string | undefined {
    return this.rules.find((r) => r.kind === "end-lockstep" && r.id === id)?.id;
  }

  /**
   * The id of the end-lockstep rule whose `functions` hold `where` (a symbolized PC, e.g.
   * "p_noncanon_push+0x12"), else undefined.
   */
  endAtFunction(where: string): string | undefined {
    const fn = where.replace(/\+0x[0-9a-f]+$/, "");
    return this.rules.find((r) => r.kind === "end-lockstep" && (r.functions ?? []).includes(fn))?.id;
  }

  consoleIgnored(line: string): boolean {
    return this.rules.some((r) => r.kind === "console-ignore" && r.pattern !== undefined && new RegExp(r.pattern).test(line));
  }
}
