"""Drives DebugService.Session from Python grpcio (stubs generated from the proto) for
test/system/python-session.test.ts.

usage: session_client.py --stubs DIR --address HOST:PORT --tick GVA --counter GPA [--vm ID]

Opens the stream, attaches, pipelines break / get_vp_state / set_debug_state / read_memory /
resume without waiting, matches the answers by id, waits for the pushed stops (the break's,
then the hardware breakpoint's at `tick`), steps 100 instructions with a PC trace, and closes
the stream by ending the request iterator, WITHOUT sending detach. Prints one JSON line with
what it saw; exits non-zero (with the error on stderr) when anything is off.
"""

import argparse
import json
import queue
import sys
import threading

TIMEOUT = 20.0  # seconds for any one answer or stop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--tick", required=True, type=lambda s: int(s, 0))
    parser.add_argument("--counter", required=True, type=lambda s: int(s, 0))
    parser.add_argument("--vm", default="")
    args = parser.parse_args()

    sys.path.insert(0, args.stubs)
    import grpc
    from vmm.debug.v1 import breakpoint_pb2 as bp
    from vmm.debug.v1 import debug_service_pb2 as ds
    from vmm.debug.v1 import debug_service_pb2_grpc as ds_grpc
    from vmm.debug.v1 import types_pb2 as types

    outgoing: "queue.Queue" = queue.Queue()
    END = object()

    def requests():
        while True:
            item = outgoing.get()
            if item is END:
                return
            yield item

    answers = {}  # id -> list of SessionResponse
    stops: "queue.Queue" = queue.Queue()
    cond = threading.Condition()
    ended = threading.Event()
    end_status = {}

    channel = grpc.insecure_channel(args.address)
    call = ds_grpc.DebugServiceStub(channel).Session(requests())

    def reader():
        try:
            for msg in call:
                if msg.WhichOneof("result") == "stop":
                    stops.put(msg.stop)
                else:
                    with cond:
                        answers.setdefault(msg.id, []).append(msg)
                        cond.notify_all()
            end_status["code"] = call.code().name
        except grpc.RpcError as e:
            end_status["code"] = e.code().name
            end_status["details"] = e.details()
        finally:
            ended.set()
            with cond:
                cond.notify_all()

    threading.Thread(target=reader, daemon=True).start()

    def answer(req_id, expect):
        with cond:
            if not cond.wait_for(lambda: req_id in answers or ended.is_set(), TIMEOUT):
                raise RuntimeError(f"no answer to request {req_id} within {TIMEOUT} s")
            if req_id not in answers:
                raise RuntimeError(f"stream ended before answering {req_id}: {end_status}")
            msg = answers.pop(req_id)[0]
        kind = msg.WhichOneof("result")
        if kind == "error":
            raise RuntimeError(f"request {req_id} ({expect}) failed: {msg.error.code} {msg.error.message}")
        if kind != expect:
            raise RuntimeError(f"request {req_id}: expected {expect}, got {kind}")
        return getattr(msg, kind)

    def next_stop():
        try:
            return stops.get(timeout=TIMEOUT)
        except queue.Empty:
            raise RuntimeError(f"no stop pushed within {TIMEOUT} s") from None

    try:
        # Attach: the first message; `opened` answers it.
        outgoing.put(ds.SessionRequest(attach=ds.AttachRequest(vm=args.vm)))
        opened = answer(0, "opened")
        session_id = opened.session_id

        # Pipelined: all five go out before any answer is read.
        breakpoint = types.HardwareBreakpoint(
            address=args.tick, type=bp.BREAKPOINT_TYPE_EXECUTE, size=bp.BREAKPOINT_SIZE_BYTE
        )
        ops = {
            1: ("break", ds.SessionRequest(id=1, **{"break": ds.BreakRequest()})),
            2: ("get_vp_state", ds.SessionRequest(id=2, get_vp_state=ds.GetVpStateRequest(vp=0))),
            3: ("set_debug_state", ds.SessionRequest(id=3, set_debug_state=ds.SetDebugStateRequest(
                vp=0, state=types.DebugState(breakpoints=[types.BreakpointSlot(breakpoint=breakpoint)])))),
            4: ("read_memory", ds.SessionRequest(id=4, read_memory=ds.ReadMemoryRequest(
                address=types.GuestAddress(gpa=args.counter), length=8))),
            5: ("resume", ds.SessionRequest(id=5, resume=ds.ResumeRequest())),
        }
        for _, req in ops.values():
            outgoing.put(req)
        results = {i: answer(i, kind) for i, (kind, _) in ops.items()}
        counter = int.from_bytes(results[4].data, "little")
        stopped_rip = results[2].state.x86_64.rip

        first, second = next_stop(), next_stop()
        reasons = [s.reason.WhichOneof("reason") for s in (first, second)]
        hw = second.reason.hw_breakpoint

        # Stopped at the breakpoint: VP 0's PC, then a 100-instruction step with a PC trace.
        outgoing.put(ds.SessionRequest(id=6, get_vp_state=ds.GetVpStateRequest(vp=0)))
        rip = answer(6, "get_vp_state").state.x86_64.rip
        outgoing.put(ds.SessionRequest(id=7, step=ds.StepRequest(vp=0, count=100, trace=ds.STEP_TRACE_PC)))
        step = answer(7, "step")
        trace = [int.from_bytes(step.pc_trace[i:i + 8], "little") for i in range(0, len(step.pc_trace), 8)]
        if len(step.pc_trace) != 8 * step.executed:
            raise RuntimeError(f"pc_trace has {len(step.pc_trace)} bytes for {step.executed} instructions")

        # Close: end the request iterator (a half-close), no detach. The server answers what it
        # was sent, ends the session and the stream.
        outgoing.put(END)
        if not ended.wait(TIMEOUT):
            raise RuntimeError("the server did not end the stream after the half-close")

        print(json.dumps({
            "sessionId": session_id,
            "vm": opened.vm.id,
            "counter": counter,
            "breakRip": hex(stopped_rip),
            "stops": [
                {"reason": reasons[0], "sequence": first.sequence, "vp": first.vp if first.HasField("vp") else None},
                {"reason": reasons[1], "sequence": second.sequence, "vp": second.vp if second.HasField("vp") else None,
                 "address": hex(hw.breakpoint.address)},
            ],
            "rip": hex(rip),
            "executed": step.executed,
            "stepStop": step.stop.WhichOneof("reason"),
            "traceBytes": len(step.pc_trace),
            "traceLast": hex(trace[-1]) if trace else None,
            "unexpected": {k: len(v) for k, v in answers.items()},
            "end": end_status,
        }), flush=True)
    finally:
        outgoing.put(END)
        call.cancel()
        channel.close()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report and fail
        print(f"session_client: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
