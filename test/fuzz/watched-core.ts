// A VmmCore that passes every call to the real one and counts the calls that changed the VM, so
// the fuzzer can tell "nothing changed" even where a snapshot cannot see (a write of the same
// bytes, the debug registers, which no RPC reads back). Everything it does not watch (and
// anything the interface gains) passes through untouched, capabilities included.
import type { DebugState, SoftwareBreakpoints, VmmCore } from "../../src/core";

export interface WatchedCore extends VmmCore {
  /** Calls that changed the VM and succeeded: debug state, registers, writes, run, halt, step, software breakpoints. */
  readonly changes: number;
  /** The debug state of each VP as last set (what the hardware holds). */
  debugStates(): readonly (DebugState | undefined)[];
}

/** The methods that change a VM (a halt only when it stops a running VM). */
const CHANGING = new Set<PropertyKey>(["resume", "halt", "setDebugState", "step", "setVpState", "writeMemory"]);
const CHANGING_SOFTWARE_BREAKPOINTS = new Set<PropertyKey>(["insert", "remove", "clear"]);

export function watchCore(core: VmmCore): WatchedCore {
  let changes = 0;
  const debug: (DebugState | undefined)[] = Array.from({ length: core.vpCount }, () => undefined);
  const counted =
    <A extends unknown[], R>(f: (...args: A) => Promise<R>, after?: (...args: A) => void) =>
    async (...args: A): Promise<R> => {
      const v = await f(...args);
      changes++;
      after?.(...args);
      return v;
    };
  const watchedBreakpoints = (sb: SoftwareBreakpoints): SoftwareBreakpoints =>
    new Proxy(sb, {
      get(target, prop) {
        const v: unknown = Reflect.get(target, prop, target);
        if (typeof v !== "function") return v;
        const bound = (v as (...a: unknown[]) => unknown).bind(target);
        return CHANGING_SOFTWARE_BREAKPOINTS.has(prop) ? counted(bound as (...a: unknown[]) => Promise<unknown>) : bound;
      },
    });
  let breakpoints: SoftwareBreakpoints | undefined;
  return new Proxy(core, {
    get(target, prop) {
      if (prop === "changes") return changes;
      if (prop === "debugStates") return () => debug;
      if (prop === "softwareBreakpoints") {
        const sb = target.softwareBreakpoints;
        if (sb && !breakpoints) breakpoints = watchedBreakpoints(sb);
        return sb && breakpoints;
      }
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      const bound = (v as (...a: unknown[]) => unknown).bind(target);
      if (!CHANGING.has(prop)) return bound;
      if (prop === "halt") return () => (target.runState() === "running" ? counted(target.halt.bind(target))() : target.halt());
      if (prop === "setDebugState") return counted(target.setDebugState.bind(target), (vp: number, state: DebugState) => (debug[vp] = state));
      return counted(bound as (...a: unknown[]) => Promise<unknown>);
    },
  }) as WatchedCore;
}
