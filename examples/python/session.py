#!/usr/bin/env python3
"""A vmm-debug Session stream from Python (grpcio, stubs generated from the proto).

Opens DebugService.Session, attaches, pipelines several operations without waiting for their
answers, receives the stops the server pushes, steps with a PC trace, and detaches by simply
closing the stream (the stream is the session: when it ends, the server detaches at once,
clearing the breakpoints and letting the VM run).

Needs grpcio and the generated stubs. On Debian (use /usr/bin/python3: a pyenv or venv python
does not see Debian's python3-* packages):

  apt-get install python3-grpcio protobuf-compiler protobuf-compiler-grpc libprotobuf-dev

  # from the repository root: generate the stubs into examples/python/gen
  mkdir -p examples/python/gen
  protoc -I proto -I third_party \
    --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
    --python_out=examples/python/gen --grpc_python_out=examples/python/gen \
    proto/vmm/debug/v1/*.proto third_party/google/rpc/status.proto \
    third_party/google/rpc/error_details.proto

(With pip instead: `pip install grpcio grpcio-tools` and `python -m grpc_tools.protoc` with the
same -I/--*_out arguments and no --plugin. Debian's python3-grpc-tools is too old for these
protos: its protoc 3.5 refuses proto3 `optional`.) Do not generate third_party/grpc/health into
the same folder: a top-level `grpc` package there would shadow grpcio.

Run it against `npm start` (the demo VM "demo" on 127.0.0.1:50051):

  /usr/bin/python3 examples/python/session.py 127.0.0.1:50051 demo

Options: --breakpoint GVA (default: where Break stopped VP 0; the demo guest's `tick` is
0xffffffff801010af), --stubs DIR (default: gen/ beside this file).
"""

import argparse
import os
import queue
import sys
import threading
import time

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("address", nargs="?", default="127.0.0.1:50051", help="server address (HOST:PORT)")
parser.add_argument("vm", nargs="?", default="", help="VM id (empty: the only VM served)")
parser.add_argument("--breakpoint", type=lambda s: int(s, 0), help="GVA of an execute breakpoint on VP 0")
parser.add_argument("--stubs", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"),
                    help="folder of the generated stubs")
args = parser.parse_args()

sys.path.insert(0, args.stubs)
try:
    import grpc
    from google.rpc import error_details_pb2
    from vmm.debug.v1 import breakpoint_pb2 as bp
    from vmm.debug.v1 import debug_service_pb2 as ds
    from vmm.debug.v1 import debug_service_pb2_grpc as ds_grpc
    from vmm.debug.v1 import types_pb2 as types
    from vmm.debug.v1 import vm_service_pb2 as vms
    from vmm.debug.v1 import vm_service_pb2_grpc as vms_grpc
except ImportError as e:
    sys.exit(f"{e}: install grpcio and generate the stubs into {args.stubs} (see the top of {__file__})")


_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


class OperationError(Exception):
    """A failed operation: the google.rpc.Status the server answered, with its ErrorInfo reason."""

    def __init__(self, status):
        self.code = _STATUS_CODES.get(status.code, status.code)  # e.g. grpc.StatusCode.INVALID_ARGUMENT
        self.reason, self.metadata = "", {}
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):  # domain "vmm.debug", a stable reason and the offending values
                self.reason, self.metadata = info.reason, dict(info.metadata)
        super().__init__(f"{getattr(self.code, 'name', self.code)} / {self.reason}: {status.message}")


class Session:
    """One Session stream: requests go through a queue, a reader thread sorts what comes back.

    Every operation gets an id of ours; `send` returns it at once (so calls can be pipelined)
    and `wait(id)` blocks for that answer. Stops arrive on their own (id 0): `next_stop()`.
    """

    _END = object()

    def __init__(self, channel, vm=""):
        self._outgoing = queue.Queue()
        self._answers = {}
        self._cond = threading.Condition()
        self._stops = queue.Queue()
        self._next_id = 1
        self.ended = threading.Event()
        self.end_code = None
        self._call = ds_grpc.DebugServiceStub(channel).Session(self._requests())
        threading.Thread(target=self._read, daemon=True).start()
        # The first message must be `attach`; the first answer is `opened` (or the stream ends
        # with the Attach error, e.g. FAILED_PRECONDITION / SESSION_CONFLICT).
        self._outgoing.put(ds.SessionRequest(attach=ds.AttachRequest(vm=vm)))
        self.opened = self.wait(0)
        self.id = self.opened.session_id

    def _requests(self):
        # grpcio pulls the client messages from this generator; returning from it half-closes.
        while True:
            item = self._outgoing.get()
            if item is self._END:
                return
            yield item

    def _read(self):
        try:
            for msg in self._call:
                if msg.WhichOneof("result") == "stop":
                    self._stops.put(msg.stop)
                    continue
                with self._cond:
                    self._answers.setdefault(msg.id, []).append(msg)
                    self._cond.notify_all()
            self.end_code = self._call.code()
        except grpc.RpcError as e:
            self.end_code = e.code()
            self.end_details = e.details()
        finally:
            self.ended.set()
            with self._cond:
                self._cond.notify_all()

    def send(self, **operation):
        """Sends one operation, e.g. send(read_memory=ds.ReadMemoryRequest(...)); returns its id."""
        req_id, self._next_id = self._next_id, self._next_id + 1
        self._outgoing.put(ds.SessionRequest(id=req_id, **operation))
        return req_id

    def wait(self, req_id, timeout=20.0):
        """The answer to `req_id` (its result message), or OperationError. The stream goes on."""
        with self._cond:
            if not self._cond.wait_for(lambda: req_id in self._answers or self.ended.is_set(), timeout):
                raise TimeoutError(f"no answer to request {req_id} within {timeout} s")
            if req_id not in self._answers:
                raise ConnectionError(f"the stream ended ({self.end_code}) before answering {req_id}")
            msg = self._answers.pop(req_id).pop(0)
        if msg.WhichOneof("result") == "error":
            raise OperationError(msg.error)
        return getattr(msg, msg.WhichOneof("result"))

    def next_stop(self, timeout=None):
        """The next pushed stop (SessionStop: reason, sequence, vp), or None after `timeout` s."""
        try:
            return self._stops.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self, timeout=10.0):
        """Ends the stream (half-close: no `detach` needed). The server answers what it was sent,
        detaches and ends the stream; cancel if it does not within `timeout`."""
        self._outgoing.put(self._END)
        if not self.ended.wait(timeout):
            self._call.cancel()


def describe(stop):
    reason = stop.reason.WhichOneof("reason")
    vp = f" on vp {stop.vp}" if stop.HasField("vp") else ""
    if reason == "hw_breakpoint":
        vp += f" at {stop.reason.hw_breakpoint.breakpoint.address:#x}"
    return f"{reason}{vp} (event #{stop.sequence})"


def main():
    with grpc.insecure_channel(args.address) as channel:
        session = Session(channel, args.vm)
        try:
            vm = session.opened.vm
            print(f"attached to {vm.id!r}: {vm.vp_count} VPs, {vms.RunState.Name(vm.run_state)}, session {session.id}")

            # Pipelined: every request goes out before any answer is read. Control operations run
            # in order (the registers are read once Break has stopped the VM); a failure answers
            # its own id and the stream goes on.
            i_break = session.send(**{"break": ds.BreakRequest()})  # `break` is a Python keyword
            i_regs = session.send(get_vp_state=ds.GetVpStateRequest(vp=0))
            i_bad = session.send(get_vp_state=ds.GetVpStateRequest(vp=99))
            session.wait(i_break)
            print("stop:", describe(session.next_stop(timeout=20)))  # Break's stop is pushed too
            rip = session.wait(i_regs).state.x86_64.rip
            print(f"vp 0 stopped at rip={rip:#x}")
            try:
                session.wait(i_bad)
            except OperationError as e:
                print("vp 99 refused as expected:", e, e.metadata)

            target = args.breakpoint if args.breakpoint is not None else rip
            i_code = session.send(read_memory=ds.ReadMemoryRequest(
                address=types.GuestAddress(gva=types.GuestAddress.Gva(vp=0, gva=target)), length=16))
            i_arm = session.send(set_debug_state=ds.SetDebugStateRequest(vp=0, state=types.DebugState(
                breakpoints=[types.BreakpointSlot(breakpoint=types.HardwareBreakpoint(
                    address=target, type=bp.BREAKPOINT_TYPE_EXECUTE, size=bp.BREAKPOINT_SIZE_BYTE))])))
            i_run = session.send(resume=ds.ResumeRequest())
            print(f"code at {target:#x}:", session.wait(i_code).data.hex(" "))
            session.wait(i_arm)
            session.wait(i_run)  # answered once the VM runs; the stop comes later
            stop = session.next_stop(timeout=10)
            if stop is None:
                print(f"no stop at {target:#x} within 10 s; breaking")
                session.wait(session.send(**{"break": ds.BreakRequest()}))
                stop = session.next_stop(timeout=20)
            print("stop:", describe(stop))

            # Run 20 instructions on VP 0 (the others stay stopped), with the PC after each.
            step = session.wait(session.send(step=ds.StepRequest(vp=0, count=20, trace=ds.STEP_TRACE_PC)))
            pcs = [int.from_bytes(step.pc_trace[k:k + 8], "little") for k in range(0, len(step.pc_trace), 8)]
            ended = f", ended early by {step.stop.WhichOneof('reason')}" if step.HasField("stop") else ""
            print(f"stepped {step.executed} instructions{ended}:", " ".join(f"{pc:#x}" for pc in pcs))
        finally:
            # No `detach`: closing the stream ends the session, clears the breakpoint and resumes.
            session.close()
            print("stream closed:", session.end_code)

        # The server has detached: no session holds the VM and it runs again.
        vm_service = vms_grpc.VmServiceStub(channel)
        for _ in range(50):
            vm = vm_service.GetVm(vms.GetVmRequest(vm=args.vm), timeout=5).vm
            if not vm.HasField("attached") and vm.run_state == vms.RUN_STATE_RUNNING:
                break
            time.sleep(0.1)
        held = f"held by {vm.attached.holder}" if vm.HasField("attached") else "detached"
        print(f"after close: {held}, {vms.RunState.Name(vm.run_state)}")


if __name__ == "__main__":
    main()
