#!/usr/bin/env python3
"""Standalone evidence that tests/functions/function.py behaves as documented.

Run with the interpreter the tests use (the one that has the SDK):

    .venv/bin/python tests/functions/check_function.py

It starts the function exactly as Plinth does (--insecure --address
127.0.0.1:PORT), calls it over gRPC with the SDK's own generated stubs, and
checks every behaviour. CI does not run it; the Rust end-to-end tests are the
real gate, and this exists so a failure there can be pinned on Plinth or on the
function without guessing.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time

import grpc

from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1
from crossplane.function.proto.v1beta1 import run_function_pb2 as fnv1beta1
from crossplane.function.proto.v1beta1 import run_function_pb2_grpc as grpcv1beta1

HERE = os.path.dirname(os.path.abspath(__file__))
FUNCTION = os.path.join(HERE, "function.py")

XR = {
    "apiVersion": "example.plinth.dev/v1alpha1",
    "kind": "XDatabase",
    "metadata": {"name": "my-xr"},
    "spec": {"parameters": {"names": ["alpha", "beta"]}},
}

READY = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Available"}]}}

passed = 0


def check(what: str, cond: bool, detail=None) -> None:
    global passed
    if not cond:
        msg = f"FAIL: {what}"
        if detail is not None:
            msg += f"\n  got: {detail}"
        raise AssertionError(msg)
    passed += 1
    print(f"ok   {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inp(**fields) -> dict:
    return {"apiVersion": "test.plinth.dev/v1", "kind": "Input", **fields}


def make_req(
    input_: dict,
    *,
    tag: str = "",
    xr: dict | None = None,
    observed: dict | None = None,
    desired: dict | None = None,
    desired_xr: dict | None = None,
    context: dict | None = None,
) -> fnv1.RunFunctionRequest:
    req = fnv1.RunFunctionRequest(
        meta=fnv1.RequestMeta(tag=tag),
        input=resource.dict_to_struct(input_),
        observed=fnv1.State(
            composite=fnv1.Resource(resource=resource.dict_to_struct(xr or XR)),
        ),
    )
    for name, (body, details) in (observed or {}).items():
        req.observed.resources[name].resource.CopyFrom(resource.dict_to_struct(body))
        for k, v in details.items():
            req.observed.resources[name].connection_details[k] = v
    for name, body in (desired or {}).items():
        req.desired.resources[name].resource.CopyFrom(resource.dict_to_struct(body))
    if desired_xr is not None:
        req.desired.composite.resource.CopyFrom(resource.dict_to_struct(desired_xr))
    if context is not None:
        req.context.CopyFrom(resource.dict_to_struct(context))
    return req


def status(rsp) -> dict:
    return resource.struct_to_dict(rsp.desired.composite.resource).get("status", {})


def fatals(rsp) -> list[str]:
    return [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]


def run_checks(stub, beta_stub, calls_path: str) -> None:
    calls = 0

    def run(req, timeout=10):
        nonlocal calls
        calls += 1
        return stub.RunFunction(req, timeout=timeout)

    # --- compose-database --------------------------------------------------
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-earlier-step"}}
    rsp = run(
        make_req(
            inp(behaviour="compose-database"),
            tag="tag-1",
            desired={"other": other},
            desired_xr={"status": {"earlier": "kept"}},
        )
    )
    check("compose-database: tag echoed", rsp.meta.tag == "tag-1", rsp.meta.tag)
    check("compose-database: no fatal", not fatals(rsp), fatals(rsp))
    db = resource.struct_to_dict(rsp.desired.resources["database"].resource)
    check(
        "compose-database: desires the Database",
        db
        == {
            "apiVersion": "postgres.local.plinth.dev/v1alpha1",
            "kind": "Database",
            "spec": {
                "forProvider": {},
                "writeConnectionSecretToRef": {"namespace": "plinth-system", "name": "my-xr-database"},
            },
        },
        db,
    )
    check(
        "compose-database: not ready while unobserved",
        rsp.desired.resources["database"].ready == fnv1.READY_UNSPECIFIED,
        rsp.desired.resources["database"].ready,
    )
    check(
        "compose-database: earlier desired resource passed through",
        resource.struct_to_dict(rsp.desired.resources["other"].resource) == other,
    )
    check(
        "compose-database: status.databaseName set, earlier status kept",
        status(rsp) == {"earlier": "kept", "databaseName": "my-xr-database"},
        status(rsp),
    )
    check(
        "compose-database: only the function's own detail without an observed db",
        dict(rsp.desired.composite.connection_details) == {"function": b"python"},
        dict(rsp.desired.composite.connection_details),
    )

    rsp = run(
        make_req(
            inp(behaviour="compose-database"),
            observed={"database": (READY, {"username": b"postgres", "password": b"s3cret"})},
        )
    )
    check(
        "compose-database: ready once observed Ready=True",
        rsp.desired.resources["database"].ready == fnv1.READY_TRUE,
    )
    check(
        "compose-database: observed details copied plus function=python",
        dict(rsp.desired.composite.connection_details)
        == {"username": b"postgres", "password": b"s3cret", "function": b"python"},
        dict(rsp.desired.composite.connection_details),
    )
    not_ready = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Creating"}]}}
    rsp = run(make_req(inp(behaviour="compose-database"), observed={"database": (not_ready, {})}))
    check(
        "compose-database: not ready while observed Ready=False",
        rsp.desired.resources["database"].ready == fnv1.READY_UNSPECIFIED,
    )

    # --- fatal ---------------------------------------------------------------
    rsp = run(make_req(inp(behaviour="fatal"), desired={"other": other}))
    check("fatal: default message", fatals(rsp) == ["fatal on purpose"], fatals(rsp))
    check(
        "fatal: desires nothing new",
        list(rsp.desired.resources.keys()) == ["other"],
        list(rsp.desired.resources.keys()),
    )
    rsp = run(make_req(inp(behaviour="fatal", message="boom")))
    check("fatal: input message", fatals(rsp) == ["boom"], fatals(rsp))

    # --- set-context / read-context -----------------------------------------
    rsp = run(make_req(inp(behaviour="set-context"), context={"other.dev/key": "kept"}))
    ctx = resource.struct_to_dict(rsp.context)
    check(
        "set-context: default greeting, existing context kept",
        ctx == {"other.dev/key": "kept", "plinth.dev/greeting": "hello"},
        ctx,
    )
    check("set-context: status.greetingSet", status(rsp) == {"greetingSet": "hello"}, status(rsp))
    rsp = run(make_req(inp(behaviour="set-context", greeting="bonjour")))
    check(
        "set-context: input greeting",
        resource.struct_to_dict(rsp.context).get("plinth.dev/greeting") == "bonjour",
    )

    # The second step sees the first step's context, as a pipeline would pass it.
    rsp2 = run(make_req(inp(behaviour="read-context"), context=resource.struct_to_dict(rsp.context)))
    check("read-context: greeting from context", status(rsp2) == {"greeting": "bonjour"}, status(rsp2))
    rsp = run(make_req(inp(behaviour="read-context")))
    check("read-context: missing when absent", status(rsp) == {"greeting": "missing"}, status(rsp))

    # --- require-configmap --------------------------------------------------
    want_sel = fnv1.ResourceSelector(api_version="v1", kind="ConfigMap", match_name="cfg", namespace="ns1")
    req_in = inp(behaviour="require-configmap", name="cfg", namespace="ns1")
    rsp = run(make_req(req_in))
    check(
        "require-configmap: requirement on first call (resources field)",
        dict(rsp.requirements.resources) == {"config": want_sel},
        rsp.requirements,
    )
    check(
        "require-configmap: deprecated extra_resources not used",
        len(rsp.requirements.extra_resources) == 0,
    )
    check("require-configmap: nothing written before resolution", status(rsp) == {}, status(rsp))

    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "ns1"},
        "data": {"value": "from-the-configmap"},
    }
    req = make_req(req_in)
    req.required_resources["config"].items.add().resource.CopyFrom(resource.dict_to_struct(cm))
    rsp = run(req)
    check(
        "require-configmap: requirement repeated once satisfied",
        dict(rsp.requirements.resources) == {"config": want_sel},
    )
    check(
        "require-configmap: status.configValue from required_resources",
        status(rsp) == {"configValue": "from-the-configmap"},
        status(rsp),
    )

    req = make_req(req_in)
    req.extra_resources["config"].items.add().resource.CopyFrom(resource.dict_to_struct(cm))
    rsp = run(req)
    check(
        "require-configmap: falls back to deprecated extra_resources",
        status(rsp) == {"configValue": "from-the-configmap"},
        status(rsp),
    )

    req = make_req(req_in)
    req.required_resources["config"].SetInParent()  # resolved, nothing matched
    rsp = run(req)
    check("require-configmap: nothing written when no ConfigMap matched", status(rsp) == {}, status(rsp))

    rsp = run(make_req(inp(behaviour="require-configmap", name="cfg")))
    check(
        "require-configmap: namespace optional",
        dict(rsp.requirements.resources)
        == {"config": fnv1.ResourceSelector(api_version="v1", kind="ConfigMap", match_name="cfg")},
        rsp.requirements,
    )

    # --- desire-nops ---------------------------------------------------------
    rsp = run(make_req(inp(behaviour="desire-nops"), observed={"alpha": (READY, {})}))
    check(
        "desire-nops: one resource per name",
        sorted(rsp.desired.resources.keys()) == ["alpha", "beta"],
        list(rsp.desired.resources.keys()),
    )
    check(
        "desire-nops: NopResource body",
        resource.struct_to_dict(rsp.desired.resources["beta"].resource)
        == {
            "apiVersion": "nop.plinth.dev/v1alpha1",
            "kind": "NopResource",
            "spec": {"forProvider": {"fields": {"name": "beta"}}},
        },
    )
    check(
        "desire-nops: ready only where observed Ready=True",
        (rsp.desired.resources["alpha"].ready, rsp.desired.resources["beta"].ready)
        == (fnv1.READY_TRUE, fnv1.READY_UNSPECIFIED),
    )
    xr = {**XR, "spec": {"parameters": {"names": ["alpha"]}}}
    rsp = run(make_req(inp(behaviour="desire-nops"), xr=xr, observed={"alpha": (READY, {}), "beta": ({}, {})}))
    check(
        "desire-nops: a removed name is no longer desired",
        list(rsp.desired.resources.keys()) == ["alpha"],
        list(rsp.desired.resources.keys()),
    )

    # --- ttl -----------------------------------------------------------------
    rsp = run(make_req(inp(behaviour="ttl")))
    check("ttl: default 60s", rsp.meta.ttl.ToTimedelta().total_seconds() == 60, rsp.meta.ttl)
    rsp = run(make_req(inp(behaviour="ttl", seconds=5)))
    check("ttl: input seconds", rsp.meta.ttl.ToTimedelta().total_seconds() == 5, rsp.meta.ttl)
    rsp = run(make_req(inp(behaviour="ttl", seconds=0)))
    check("ttl: zero allowed", rsp.meta.ttl.ToTimedelta().total_seconds() == 0, rsp.meta.ttl)
    rsp = run(make_req(inp(behaviour="read-context")))
    check(
        "other behaviours keep the SDK default ttl (60s)",
        rsp.meta.ttl.ToTimedelta().total_seconds() == 60,
        rsp.meta.ttl,
    )

    # --- condition -----------------------------------------------------------
    rsp = run(make_req(inp(behaviour="condition", message="db is up")))
    check(
        "condition: DatabaseReady=True to composite and claim",
        list(rsp.conditions)
        == [
            fnv1.Condition(
                type="DatabaseReady",
                status=fnv1.STATUS_CONDITION_TRUE,
                reason="Available",
                message="db is up",
                target=fnv1.TARGET_COMPOSITE_AND_CLAIM,
            )
        ],
        rsp.conditions,
    )
    check(
        "condition: warning (composite and claim) and normal (composite) results",
        list(rsp.results)
        == [
            fnv1.Result(
                severity=fnv1.SEVERITY_WARNING,
                message="warning from the function",
                target=fnv1.TARGET_COMPOSITE_AND_CLAIM,
            ),
            fnv1.Result(
                severity=fnv1.SEVERITY_NORMAL,
                message="normal from the function",
                target=fnv1.TARGET_COMPOSITE,
            ),
        ],
        rsp.results,
    )
    rsp = run(make_req(inp(behaviour="condition", type="Synced2", reason="Because")))
    c = rsp.conditions[0]
    check(
        "condition: input type/reason, message omitted when not given",
        (c.type, c.reason, c.HasField("message")) == ("Synced2", "Because", False),
        c,
    )

    # --- several behaviours, unknown, none ----------------------------------
    rsp = run(
        make_req(
            inp(
                behaviours=["set-context", {"behaviour": "ttl", "seconds": 7}, "compose-database"],
                greeting="hi",
                seconds=99,
            )
        )
    )
    check(
        "behaviours: all applied, per-entry override wins",
        (
            resource.struct_to_dict(rsp.context).get("plinth.dev/greeting"),
            rsp.meta.ttl.ToTimedelta().total_seconds(),
            status(rsp),
            "database" in rsp.desired.resources,
        )
        == ("hi", 7, {"greetingSet": "hi", "databaseName": "my-xr-database"}, True),
        rsp,
    )
    rsp = run(make_req(inp(behaviour="no-such-thing")))
    check("unknown behaviour: fatal naming it", fatals(rsp) == ["unknown behaviour 'no-such-thing'"], fatals(rsp))
    rsp = run(make_req(inp()))
    check("no behaviour: fatal", len(fatals(rsp)) == 1 and "behaviour" in fatals(rsp)[0], fatals(rsp))
    rsp = run(make_req(inp(behaviour="require-configmap")))
    check("require-configmap without name: fatal", len(fatals(rsp)) == 1, fatals(rsp))
    rsp = run(make_req(inp(behaviour="ttl", seconds="soon")))
    check(
        "bad input: a Fatal result, not a gRPC error",
        len(fatals(rsp)) == 1 and fatals(rsp)[0].startswith("behaviour 'ttl' failed"),
        fatals(rsp),
    )

    # --- hang ----------------------------------------------------------------
    start = time.monotonic()
    try:
        run(make_req(inp(behaviour="hang"), tag="hang-tag"), timeout=2)
        code = None
    except grpc.RpcError as e:
        code = e.code()
    elapsed = time.monotonic() - start
    check(
        "hang: no answer within a 2 s client deadline",
        code == grpc.StatusCode.DEADLINE_EXCEEDED and elapsed >= 1.9,
        (code, elapsed),
    )
    start = time.monotonic()
    rsp = run(make_req(inp(behaviour="hang", seconds=0.5)), timeout=5)
    elapsed = time.monotonic() - start
    check("hang: answers after input seconds", 0.45 <= elapsed < 4 and not fatals(rsp), elapsed)
    # The server must still be serving after a caller gave up on it.
    rsp = run(make_req(inp(behaviour="ttl", seconds=3)))
    check("hang: server still answers after an abandoned call", rsp.meta.ttl.seconds == 3)

    # --- v1beta1 -------------------------------------------------------------
    breq = fnv1beta1.RunFunctionRequest()
    breq.ParseFromString(make_req(inp(behaviour="set-context"), tag="beta").SerializeToString())
    calls += 1
    brsp = beta_stub.RunFunction(breq, timeout=10)
    check(
        "v1beta1 service answers too",
        brsp.meta.tag == "beta" and resource.struct_to_dict(brsp.context) == {"plinth.dev/greeting": "hello"},
        brsp,
    )

    # --- the call log --------------------------------------------------------
    with open(calls_path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    check(f"call log: one line per call ({calls})", len(lines) == calls, len(lines))
    check("call log: behaviour and tag", lines[0] == "compose-database tag-1", lines[0])
    check("call log: hanging call recorded", "hang hang-tag" in lines, lines)
    check(
        "call log: several behaviours comma-joined",
        "set-context,ttl,compose-database " in lines,
        lines,
    )


def main() -> int:
    port = free_port()
    calls = tempfile.NamedTemporaryFile(prefix="plinth-fn-calls.", suffix=".log", delete=False)
    calls.close()
    env = {**os.environ, "PLINTH_TEST_FUNCTION_CALLS": calls.name}
    cmd = [sys.executable, FUNCTION, "--insecure", "--address", f"127.0.0.1:{port}"]
    print("starting:", " ".join(cmd))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        try:
            grpc.channel_ready_future(channel).result(timeout=30)
        except grpc.FutureTimeoutError:
            proc.kill()
            print(proc.communicate()[0])
            print("function did not start listening within 30 s")
            return 1
        run_checks(
            grpcv1.FunctionRunnerServiceStub(channel),
            grpcv1beta1.FunctionRunnerServiceStub(channel),
            calls.name,
        )
        channel.close()
    except AssertionError as e:
        print(e)
        return 1
    finally:
        # SIGTERM is what Plinth sends; the SDK's runtime handles it by
        # stopping the server gracefully, so this also checks clean shutdown.
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=15)
            print(f"function exited with {proc.returncode} after SIGTERM")
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            print("function ignored SIGTERM for 15 s; killed")
        if os.environ.get("CHECK_FUNCTION_VERBOSE"):
            print(out)
        os.unlink(calls.name)
    print(f"\nall {passed} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
