#!/usr/bin/env python3
"""A configurable composition function for Plinth's end-to-end tests.

It is written against Crossplane's own Python SDK so that the tests exercise
Plinth against a function built the way real ones are, not against a stub that
happens to agree with Plinth's reading of the protocol.

Run it the way Crossplane runs a packaged function:

    python tests/functions/function.py --insecure --address 127.0.0.1:PORT

What it does is chosen per pipeline step by the step's input:

    {"apiVersion": "test.plinth.dev/v1", "kind": "Input",
     "behaviour": "compose-database"}

or several at once, applied in order to the same response; an entry may be an
object whose fields override the top-level input for that behaviour only:

    {"apiVersion": "test.plinth.dev/v1", "kind": "Input",
     "behaviours": ["set-context", {"behaviour": "ttl", "seconds": 5}]}
"""

import asyncio
import datetime
import os

import click
import grpc

from crossplane.function import cli as sdkcli
from crossplane.function import logging, request, resource, response
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

CALLS_ENV = "PLINTH_TEST_FUNCTION_CALLS"
GREETING_KEY = "plinth.dev/greeting"


def _status(rsp: fnv1.RunFunctionResponse):
    # Merge into the desired composite's status rather than using
    # resource.update_status, which replaces the whole status object and so
    # would drop fields an earlier pipeline step (or behaviour) already set.
    return rsp.desired.composite.resource.get_or_create_struct("status")


def _observed_ready(req: fnv1.RunFunctionRequest, name: str) -> bool:
    # .get() rather than [] so that asking never inserts an empty observed
    # resource into the request's map.
    observed = req.observed.resources.get(name)
    return resource.get_condition(observed, "Ready").status == "True"


def _xr(req: fnv1.RunFunctionRequest) -> dict:
    return resource.struct_to_dict(req.observed.composite.resource)


def _seconds(value) -> datetime.timedelta:
    # Struct numbers arrive as floats (JSON has one number type), so accept any
    # numeric form, including a string, rather than insisting on an int.
    return datetime.timedelta(seconds=float(value))


def compose_database(req, rsp, opts):
    xr_name = _xr(req).get("metadata", {}).get("name", "")
    desired = rsp.desired.resources["database"]
    resource.update(
        desired,
        {
            "apiVersion": "postgres.local.plinth.dev/v1alpha1",
            "kind": "Database",
            "spec": {
                "forProvider": {},
                "writeConnectionSecretToRef": {
                    "namespace": "plinth-system",
                    "name": f"{xr_name}-database",
                },
            },
        },
    )
    if _observed_ready(req, "database"):
        desired.ready = fnv1.READY_TRUE

    observed = req.observed.resources.get("database")
    if observed is not None:
        for key, value in observed.connection_details.items():
            rsp.desired.composite.connection_details[key] = value
    # A detail only the function could have produced, so a test can tell the
    # function's details apart from ones copied from the composed resource.
    rsp.desired.composite.connection_details["function"] = b"python"

    _status(rsp)["databaseName"] = f"{xr_name}-database"


def fatal(req, rsp, opts):
    response.fatal(rsp, str(opts.get("message", "fatal on purpose")))


def set_context(req, rsp, opts):
    greeting = str(opts.get("greeting", "hello"))
    rsp.context[GREETING_KEY] = greeting
    # Also visible on the XR, so a test can see this step ran even when the
    # step that reads the context is misconfigured.
    _status(rsp)["greetingSet"] = greeting


def read_context(req, rsp, opts):
    # Read from the request, not the response: the point is to observe what
    # Plinth carried over from the previous step.
    if GREETING_KEY in req.context:
        value = req.context[GREETING_KEY]
        greeting = value if isinstance(value, str) else str(value)
    else:
        greeting = "missing"
    _status(rsp)["greeting"] = greeting


def require_configmap(req, rsp, opts):
    name = opts.get("name")
    if not name:
        response.fatal(rsp, "require-configmap needs input field 'name'")
        return
    namespace = opts.get("namespace")
    # Declared on every call, satisfied or not: Crossplane keeps re-running a
    # function until its requirements stop changing, so dropping the
    # requirement once it is met would look like a change.
    response.require_resources(
        rsp,
        "config",
        "v1",
        "ConfigMap",
        match_name=str(name),
        namespace=str(namespace) if namespace else None,
    )

    cm = request.get_required_resource(req, "config")
    if cm is None and "config" in req.extra_resources:
        # A caller that only speaks the deprecated field still gets an answer.
        items = req.extra_resources["config"].items
        if items:
            cm = resource.struct_to_dict(items[0].resource)
    if cm is None:
        return
    value = (cm.get("data") or {}).get("value")
    if value is not None:
        _status(rsp)["configValue"] = value


async def hang(req, rsp, opts):
    # asyncio.sleep, not time.sleep, so the server's event loop stays free and
    # other calls (and shutdown) are not held up behind this one.
    await asyncio.sleep(_seconds(opts.get("seconds", 3600)).total_seconds())


def desire_nops(req, rsp, opts):
    names = _xr(req).get("spec", {}).get("parameters", {}).get("names") or []
    for name in names:
        name = str(name)
        desired = rsp.desired.resources[name]
        resource.update(
            desired,
            {
                "apiVersion": "nop.plinth.dev/v1alpha1",
                "kind": "NopResource",
                "spec": {"forProvider": {"fields": {"name": name}}},
            },
        )
        if _observed_ready(req, name):
            desired.ready = fnv1.READY_TRUE


def ttl(req, rsp, opts):
    rsp.meta.ttl.FromTimedelta(_seconds(opts.get("seconds", 60)))


def condition(req, rsp, opts):
    # Built by hand because response.set_conditions cannot set a target, and
    # the claim-facing target is the point of this behaviour.
    c = fnv1.Condition(
        type=str(opts.get("type", "DatabaseReady")),
        status=fnv1.STATUS_CONDITION_TRUE,
        reason=str(opts.get("reason", "Available")),
        target=fnv1.TARGET_COMPOSITE_AND_CLAIM,
    )
    if "message" in opts:
        c.message = str(opts["message"])
    rsp.conditions.append(c)

    # The SDK helpers leave target unset; set it on what they appended.
    response.warning(rsp, "warning from the function")
    rsp.results[-1].target = fnv1.TARGET_COMPOSITE_AND_CLAIM
    response.normal(rsp, "normal from the function")
    rsp.results[-1].target = fnv1.TARGET_COMPOSITE


BEHAVIOURS = {
    "compose-database": compose_database,
    "fatal": fatal,
    "set-context": set_context,
    "read-context": read_context,
    "require-configmap": require_configmap,
    "hang": hang,
    "desire-nops": desire_nops,
    "ttl": ttl,
    "condition": condition,
}


def _steps(inp: dict) -> list[tuple[str, dict]]:
    """The behaviours to apply, each with the options it sees."""
    base = {k: v for k, v in inp.items() if k not in ("behaviour", "behaviours")}
    entries = inp.get("behaviours")
    if entries is None:
        entries = [inp["behaviour"]] if "behaviour" in inp else []
    steps = []
    for entry in entries:
        if isinstance(entry, dict):
            opts = {**base, **{k: v for k, v in entry.items() if k != "behaviour"}}
            steps.append((str(entry.get("behaviour", "")), opts))
        else:
            steps.append((str(entry), base))
    return steps


def _record_call(label: str, tag: str) -> None:
    path = os.environ.get(CALLS_ENV)
    if not path:
        return
    # One write of one line per call, so the tests can count calls by counting
    # lines even when a hanging call and a normal one overlap.
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{label} {tag}\n")


class FunctionRunner(grpcv1.FunctionRunnerServiceServicer):
    """Runs the behaviours named by each step's input."""

    def __init__(self):
        self.log = logging.get_logger()

    async def RunFunction(  # noqa: N802  # gRPC requires this name.
        self, req: fnv1.RunFunctionRequest, _: grpc.aio.ServicerContext
    ) -> fnv1.RunFunctionResponse:
        # response.to copies tag, desired state and context, so anything this
        # step does not touch passes through to the next step unchanged.
        rsp = response.to(req)

        inp = resource.struct_to_dict(req.input)
        steps = _steps(inp)
        label = ",".join(b for b, _ in steps) or "<none>"
        # Recorded before running, so a call that hangs is still counted.
        _record_call(label, req.meta.tag)
        log = self.log.bind(tag=req.meta.tag, behaviours=label)
        log.info("running function")

        if not steps:
            response.fatal(rsp, "input names no behaviour: set 'behaviour' or 'behaviours'")
            return rsp

        for name, opts in steps:
            fn = BEHAVIOURS.get(name)
            if fn is None:
                response.fatal(rsp, f"unknown behaviour {name!r}")
                return rsp
            try:
                result = fn(req, rsp, opts)
                if asyncio.iscoroutine(result):
                    await result
            except Exception as e:  # noqa: BLE001
                # A Fatal result reaches the test as a readable XR condition;
                # an exception would only surface as an opaque gRPC UNKNOWN.
                log.exception("behaviour failed", behaviour=name)
                response.fatal(rsp, f"behaviour {name!r} failed: {e}")
                return rsp

        return rsp


@click.command()
@sdkcli.standard_options
def cli(**kwargs):
    """Serve the test function over Crossplane's RunFunction gRPC protocol."""
    sdkcli.run(FunctionRunner(), **kwargs)


if __name__ == "__main__":
    cli()
