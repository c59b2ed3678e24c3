#!/usr/bin/env python3
"""Calls a remote vmm-debug server from Python over TLS (or mutual TLS) with a bearer token.

Lists the VMs and reads 16 bytes of the first VM's memory at a guest physical address: what a
viewer may do. The TLS part is grpc.ssl_channel_credentials (the CA that signed the server's
certificate, and for a server started with --client-ca this client's certificate and key); the
token (from `vmm-debug token add`, read from $VMM_DEBUG_TOKEN) rides every call as
`authorization: Bearer <token>` through grpc.access_token_call_credentials.

Needs grpcio and the stubs generated as the top of session.py shows (into examples/python/gen).

  VMM_DEBUG_TOKEN=... /usr/bin/python3 examples/python/remote.py localhost:50443 \\
    --ca pki/ca.crt --cert pki/client.crt --key pki/client.key

The host in the address must be a name (or IP) the server's certificate carries; --server-name
overrides the name checked (e.g. connecting by an IP the certificate does not list).
"""

import argparse
import os
import sys

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("address", help="server address (HOST:PORT)")
parser.add_argument("--ca", required=True, help="CA certificate (PEM) the server's certificate chains to")
parser.add_argument("--cert", help="client certificate (PEM), for a server with --client-ca")
parser.add_argument("--key", help="the client certificate's private key (PEM)")
parser.add_argument("--server-name", help="name to check the server's certificate against")
parser.add_argument("--gpa", type=lambda s: int(s, 0), default=0x1000, help="guest physical address to read (default 0x1000)")
parser.add_argument("--stubs", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"),
                    help="folder of the generated stubs")
args = parser.parse_args()
if (args.cert is None) != (args.key is None):
    sys.exit("--cert and --key go together")

sys.path.insert(0, args.stubs)
try:
    import grpc
    from vmm.debug.v1 import debug_service_pb2 as ds
    from vmm.debug.v1 import debug_service_pb2_grpc as ds_grpc
    from vmm.debug.v1 import types_pb2 as types
    from vmm.debug.v1 import vm_service_pb2 as vms
    from vmm.debug.v1 import vm_service_pb2_grpc as vms_grpc
except ImportError as e:
    sys.exit(f"{e}: install grpcio and generate the stubs into {args.stubs} (see the top of session.py)")


def read(path):
    with open(path, "rb") as f:
        return f.read()


credentials = grpc.ssl_channel_credentials(
    root_certificates=read(args.ca),
    private_key=read(args.key) if args.key else None,
    certificate_chain=read(args.cert) if args.cert else None,
)
token = os.environ.get("VMM_DEBUG_TOKEN")
if token:
    # Sends "authorization: Bearer <token>" on every call (grpcio allows it on TLS channels only).
    credentials = grpc.composite_channel_credentials(credentials, grpc.access_token_call_credentials(token))
options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []

with grpc.secure_channel(args.address, credentials, options=options) as channel:
    vm_service = vms_grpc.VmServiceStub(channel)
    debug = ds_grpc.DebugServiceStub(channel)
    try:
        listed = vm_service.ListVms(vms.ListVmsRequest(), timeout=10)
        for vm in listed.vms:
            print(f"vm {vm.id}: {vm.vp_count} VPs")
        if listed.vms:
            vm = listed.vms[0].id
            res = debug.ReadMemory(
                ds.ReadMemoryRequest(vm=vm, address=types.GuestAddress(gpa=args.gpa), length=16), timeout=10)
            print(f"{vm} gpa {args.gpa:#x}: {res.data.hex()}")
    except grpc.RpcError as e:
        sys.exit(f"{e.code().name}: {e.details()}")
