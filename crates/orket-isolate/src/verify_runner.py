# Orket's verification runner. Reads {fixture_path, scenarios:[{id, input_data}]} on
# stdin, loads the fixture, calls verify_<id>(input) or verify(input) per scenario and writes
# {ok, results:[{id, actual_output, status, error}]} on stdout, status "returned" (the call
# returned actual_output) or "raised" (error says why). It never sees the expected outputs:
# Orket compares them itself, so fixture code cannot read them from here. The fixture's own
# output goes to stderr so it cannot corrupt the answer.
import importlib.util
import json
import os
import sys
import traceback

proto = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr


def reply(answer, code):
    proto.write(json.dumps(answer))
    proto.flush()
    sys.exit(code)


def describe(exc):
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


try:
    request = json.loads(sys.stdin.read())
    path = request["fixture_path"]
    scenarios = request["scenarios"]
except Exception as exc:  # noqa: BLE001 - any malformed request is reported
    reply({"ok": False, "error": "bad request: " + describe(exc), "results": []}, 2)

try:
    spec = importlib.util.spec_from_file_location("orket_fixture", path)
    if spec is None or spec.loader is None:
        raise ImportError("cannot load " + path + " as Python")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
except BaseException as exc:  # noqa: BLE001 - syntax errors, exits, anything at import
    reply({"ok": False, "error": "cannot load the fixture: " + describe(exc), "results": []}, 1)

results = []
for scenario in scenarios:
    sid = str(scenario.get("id"))
    fn = getattr(module, "verify_" + sid, None) or getattr(module, "verify", None)
    if not callable(fn):
        results.append({"id": sid, "actual_output": None, "status": "raised",
                        "error": "the fixture defines neither verify_" + sid + "(input) nor verify(input)"})
        continue
    try:
        actual = json.loads(json.dumps(fn(scenario.get("input_data"))))
    except BaseException as exc:  # noqa: BLE001 - MemoryError, SystemExit, anything
        results.append({"id": sid, "actual_output": None, "status": "raised",
                        "error": "exception: " + describe(exc)})
        continue
    results.append({"id": sid, "actual_output": actual, "status": "returned", "error": None})

reply({"ok": True, "results": results}, 0)
