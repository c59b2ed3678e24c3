#!/usr/bin/env python3
"""The README's walkthrough from Python, one unary call at a time (grpcio, stubs generated from the proto).

Lists the VMs, attaches, breaks, reads VP 0's registers, reads the demo guest's `counter` by
guest virtual address (walking VP 0's page tables) and by guest physical address, arms a write
watchpoint on it in slot 0 of VP 0, resumes until the watchpoint fires, single-steps VP 0 and
reads its RIP (PC on aarch64), and detaches. Each step prints one line. A failed call prints its
gRPC status and the google.rpc.ErrorInfo of its details (reason and metadata, decoded from the
`grpc-status-details-bin` trailer), detaches if it had attached, and exits with status 1.

Needs grpcio and the generated stubs. On Debian (use /usr/bin/python3: a pyenv or venv python
does not see Debian's python3-* packages):

  apt-get install python3-grpcio protobuf-compiler protobuf-compiler-grpc libprotobuf-dev

  # from the repository root: generate the stubs into examples/python/gen
  mkdir -p examples/python/gen
  protoc -I proto -I third_party \\
    --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \\
    --python_out=examples/python/gen --grpc_python_out=examples/python/gen \\
    proto/vmm/debug/v1/*.proto third_party/google/rpc/status.proto \\
    third_party/google/rpc/error_details.proto

(With pip instead: `pip install grpcio grpcio-tools` and `python -m grpc_tools.protoc` with the
same -I/--*_out arguments and no --plugin; grpcio-status, if installed, is used to decode the
error details.) Run it against `npm start` (the demo VM "demo" on 127.0.0.1:50051):

  /usr/bin/python3 examples/python/scenario.py                 # = 127.0.0.1:50051 demo
  /usr/bin/python3 examples/python/scenario.py 127.0.0.1:50051 demo

Options: --symbols FILE (the guest manifest with `counter`'s addresses; default
guests/build/demo-<arch>.json for the VM's architecture), --timeout SECONDS (per call, default
30), --stubs DIR (default: gen/ beside this file).
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("address", nargs="?", default="127.0.0.1:50051", help="server address (HOST:PORT, default 127.0.0.1:50051)")
parser.add_argument("vm", nargs="?", default="demo", help="VM id (default demo)")
parser.add_argument("--symbols", help="guest manifest (JSON with symbols.counter.gva/gpa)")
parser.add_argument("--timeout", type=float, default=30.0, help="seconds allowed for each call")
parser.add_argument("--stubs", default=os.path.join(HERE, "gen"), help="folder of the generated stubs")
args = parser.parse_args()

sys.path.insert(0, args.stubs)
try:
    import grpc
    from google.rpc import error_details_pb2, status_pb2
    from vmm.debug.v1 import breakpoint_pb2 as bp
    from vmm.debug.v1 import debug_service_pb2 as ds
    from vmm.debug.v1 import debug_service_pb2_grpc as ds_grpc
    from vmm.debug.v1 import types_pb2 as types
    from vmm.debug.v1 import vm_service_pb2 as vms
    from vmm.debug.v1 import vm_service_pb2_grpc as vms_grpc
except ImportError as e:
    sys.exit(f"{e}: install grpcio and generate the stubs into {args.stubs} (see the top of {__file__})")


class ScenarioError(Exception):
    """A step that failed: an RPC error (with its decoded ErrorInfo) or an unexpected answer."""


def status_details(err):
    """The google.rpc.Status a failed call carries in its `grpc-status-details-bin` trailer, or None."""
    try:
        from grpc_status import rpc_status  # pip's grpcio-status; Debian has no package for it
        return rpc_status.from_call(err)
    except ImportError:
        pass
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    return None


def describe_error(err):
    """'FAILED_PRECONDITION / SESSION_CONFLICT: <message> {metadata}' for a failed call."""
    text = f"{err.code().name}"
    status = status_details(err)
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Is(info.DESCRIPTOR) and detail.Unpack(info):  # domain "vmm.debug", a stable reason
            text += f" / {info.reason}"
            if info.metadata:
                text += " " + json.dumps(dict(sorted(info.metadata.items())))
    return f"{text}: {err.details()}"


def call(name, method, request):
    """Calls one unary RPC; a failure becomes a ScenarioError naming the RPC and the reason."""
    try:
        return method(request, timeout=args.timeout)
    except grpc.RpcError as err:
        raise ScenarioError(f"{name} failed: {describe_error(err)}") from None


def step(name, text):
    print(f"{name}: {text}", flush=True)


def stop_text(reason):
    """A DebugStopReason as one line: 'hw_breakpoint vp=0 address=0x… type=… size=…'."""
    kind = reason.WhichOneof("reason")
    if kind is None:
        return "no reason"
    value = getattr(reason, kind)
    if kind == "hw_breakpoint":
        b = value.breakpoint
        return (f"hw_breakpoint vp={value.vp} address={b.address:#x} type={bp.BreakpointType.Name(b.type)} "
                f"size={bp.BreakpointSize.Name(b.size)}")
    if kind == "software_breakpoint":
        return f"software_breakpoint vp={value.vp} address={value.address:#x} id={value.id}"
    return f"{kind} vp={value.vp}" if kind in ("single_step", "triple_fault") else kind


def expect_stop(reason, kind):
    if reason.WhichOneof("reason") != kind:
        raise ScenarioError(f"expected a {kind} stop, got {stop_text(reason)}")


def pc_of(state):
    """VP state → (name of the PC register, its value, a line of the main registers)."""
    if state.HasField("x86_64"):
        s = state.x86_64
        return "rip", s.rip, f"rip={s.rip:#x} rsp={s.gp[4]:#x} rflags={s.rflags:#x} cr3={s.cr3:#x}"
    if state.HasField("aarch64"):
        s = state.aarch64
        return "pc", s.pc, f"pc={s.pc:#x} sp_el1={s.sp_el1:#x} cpsr={s.cpsr:#x} ttbr1_el1={s.ttbr1_el1:#x}"
    raise ScenarioError("GetVpState answered no register set")


def load_symbols(arch):
    path = args.symbols
    if path is None:
        name = {vms.ARCHITECTURE_X86_64: "x86_64", vms.ARCHITECTURE_AARCH64: "aarch64"}.get(arch)
        if name is None:
            raise ScenarioError(f"unknown architecture {arch}: give the manifest with --symbols")
        path = os.path.join(ROOT, "guests", "build", f"demo-{name}.json")
    try:
        with open(path, encoding="utf-8") as f:
            counter = json.load(f)["symbols"]["counter"]
        return int(counter["gva"], 0), int(counter["gpa"], 0)
    except (OSError, ValueError, KeyError) as e:
        raise ScenarioError(f"cannot read `counter` from the manifest {path}: {e}") from None


def scenario(channel):
    vm_service = vms_grpc.VmServiceStub(channel)
    debug = ds_grpc.DebugServiceStub(channel)

    # What is served?
    listed = call("ListVms", vm_service.ListVms, vms.ListVmsRequest()).vms
    for vm in listed:
        step("ListVms", f"{vm.id} arch={vms.Architecture.Name(vm.arch)} vps={vm.vp_count} backend={vm.backend} "
                        f"state={vms.RunState.Name(vm.run_state)}")
    info = next((vm for vm in listed if vm.id == args.vm), None)
    counter_gva, counter_gpa = load_symbols(info.arch if info else vms.ARCHITECTURE_X86_64)

    # Attach: become the VM's one controlling debugger (the VM keeps running).
    attached = call("Attach", debug.Attach, ds.AttachRequest(vm=args.vm))
    session = attached.session_id
    step("Attach", f"vm={args.vm} session={session} lease={attached.lease.seconds}s")
    failed = True
    try:
        # Break: stop the VM. The next Resume reports this stop.
        call("Break", debug.Break, ds.BreakRequest(vm=args.vm, session_id=session))
        step("Break", "the VM is stopped")

        # VP 0's registers (the VM must be stopped).
        _, _, regs = pc_of(call("GetVpState", debug.GetVpState, ds.GetVpStateRequest(vm=args.vm, vp=0, session_id=session)).state)
        step("GetVpState", f"vp=0 {regs}")

        # The counter, by guest virtual address (walks VP 0's page tables) and by physical address.
        for kind, address in (("gva", types.GuestAddress(gva=types.GuestAddress.Gva(vp=0, gva=counter_gva))),
                              ("gpa", types.GuestAddress(gpa=counter_gpa))):
            data = call("ReadMemory", debug.ReadMemory,
                        ds.ReadMemoryRequest(vm=args.vm, address=address, length=8, session_id=session)).data
            where = f"gva={counter_gva:#x} (vp 0)" if kind == "gva" else f"gpa={counter_gpa:#x}"
            step("ReadMemory", f"counter {where} value={int.from_bytes(data, 'little')}")

        # A write watchpoint on the counter in slot 0 (DR0 on x86) of VP 0.
        watch = types.HardwareBreakpoint(address=counter_gva, type=bp.BREAKPOINT_TYPE_WRITE, size=bp.BREAKPOINT_SIZE_QWORD)
        call("SetDebugState", debug.SetDebugState, ds.SetDebugStateRequest(
            vm=args.vm, session_id=session, vp=0, state=types.DebugState(breakpoints=[types.BreakpointSlot(breakpoint=watch)])))
        step("SetDebugState", f"vp=0 slot=0 write watchpoint, 8 bytes at {counter_gva:#x}")

        # Resume twice: the first answers the Break at once, the second runs until the watchpoint fires.
        for expected in ("break", "hw_breakpoint"):
            reason = call("Resume", debug.Resume, ds.ResumeRequest(vm=args.vm, session_id=session)).reason
            step("Resume", stop_text(reason))
            expect_stop(reason, expected)
        pc_name, pc, _ = pc_of(call("GetVpState", debug.GetVpState, ds.GetVpStateRequest(vm=args.vm, vp=0, session_id=session)).state)
        step("GetVpState", f"vp=0 {pc_name}={pc:#x} (at the watchpoint)")

        # Single-step VP 0 (single_step on, watchpoint off), then look at RIP.
        call("SetDebugState", debug.SetDebugState, ds.SetDebugStateRequest(
            vm=args.vm, session_id=session, vp=0, state=types.DebugState(single_step=True)))
        step("SetDebugState", "vp=0 single_step on, slots cleared")
        reason = call("Resume", debug.Resume, ds.ResumeRequest(vm=args.vm, session_id=session)).reason
        step("Resume", stop_text(reason))
        expect_stop(reason, "single_step")
        pc_name, pc, _ = pc_of(call("GetVpState", debug.GetVpState, ds.GetVpStateRequest(vm=args.vm, vp=0, session_id=session)).state)
        step("GetVpState", f"vp=0 {pc_name}={pc:#x} (after the step)")
        failed = False
    finally:
        # Detach: clears all debug state and lets the VM run again (also after a failed step).
        try:
            call("Detach", debug.Detach, ds.DetachRequest(vm=args.vm, session_id=session))
            step("Detach", "the VM runs again")
        except ScenarioError as e:
            if not failed:
                raise
            print(f"(and then {e})", file=sys.stderr)  # the first failure is the one reported


def main():
    with grpc.insecure_channel(args.address) as channel:
        try:
            scenario(channel)
        except ScenarioError as e:
            print(f"FAILED: {e}", file=sys.stderr)
            return 1
    print("scenario done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
