"""Hostile specs: each is refused with a clear DSLError, in bounded time and memory, and
nothing it names is ever run.

Every case runs in a child process with a wall-clock limit and an address-space limit (a
few GB above what torch itself needs), so a hang or a runaway allocation fails its test
instead of hanging or killing CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PWNED = Path(tempfile.gettempdir()) / f"netdsl-pwned-{os.getpid()}"
TIME_LIMIT = 60  # seconds per case
MEMORY_HEADROOM = 3 * 2**30  # bytes a case may map beyond what the imports took

# The runner imports torch and netdsl once, then forks a child per case: the child caps its
# address space and runs the case; the runner kills it when it overruns its time limit.
RUNNER = r"""
import json, os, resource, select, signal, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
import dsl, dsl.build.resolve, dsl.build.compile, dsl.syntax.parse_yaml
from dsl.syntax.loader import parse_text

def generate(case):
    if case.get("generate") == "lines":
        return "net Long():\n    input x: [B, 3]\n" + "    x = relu(x)\n" * case["n"] + "    return x\n"
    if case.get("generate") == "parens":
        return "net Deep():\n    input x: [B, 3]\n    y = " + "(" * case["n"] + "1" + ")" * case["n"] + "\n    return x\n"
    return case["text"]

def run(case):
    with open("/proc/self/status") as status:
        vm = next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + case["headroom"], vm + case["headroom"]))
    text = generate(case)
    start = time.perf_counter()
    try:
        if case["mode"] == "parse":
            parse_text(text, case["file"])
        elif case["mode"] == "validate":
            dsl.build.resolve.resolve(parse_text(text, case["file"]), root=Path(case["root"]))
        else:
            dsl.build_model(text)
        result = {"outcome": "ok"}
    except dsl.DSLError as exc:
        result = {"outcome": "dsl", "kind": type(exc).__name__, "kinds": [c.__name__ for c in type(exc).__mro__], "code": exc.code, "message": exc.message, "rendered": exc.render()}
    except BaseException as exc:
        result = {"outcome": "raw", "kind": type(exc).__name__, "message": str(exc)[:500]}
    result["seconds"] = time.perf_counter() - start
    return result

results = {}
for case in json.loads(sys.stdin.read()):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.chdir(case["root"])
        try:
            data = json.dumps(run(case)).encode()
        except BaseException as exc:
            data = json.dumps({"outcome": "crash", "message": repr(exc)[:500]}).encode()
        with os.fdopen(write, "wb") as out:
            out.write(data)
        os._exit(0)
    os.close(write)
    deadline, chunks = time.monotonic() + case["limit"], []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([read], [], [], left)[0]:
            os.kill(pid, signal.SIGKILL)
            results[case["name"]] = {"outcome": "timeout", "seconds": case["limit"]}
            break
        chunk = os.read(read, 1 << 16)
        if not chunk:
            results[case["name"]] = json.loads(b"".join(chunks) or b'{"outcome": "crash"}')
            break
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
print("RESULTS " + json.dumps(results))
"""


@dataclass(frozen=True)
class Case:
    name: str
    text: str = ""
    mode: str = "validate"  # parse | validate | build
    file: str = "hostile.net"
    expect: str | tuple[str, ...] = "DSLError"  # error class name(s), or "DSLError" for any
    allow_ok: bool = False  # may also be accepted (parsed/validated without error)
    extra: tuple[tuple[str, object], ...] = ()


def _net(*body: str, params: str = "") -> str:
    return (
        f"net Hostile({params}):\n    input x: [B, 3]\n"
        + "".join(f"    {line}\n" for line in body)
        + "    return x\n"
    )


YAML_HEAD = "defs:\n- net: Hostile\n  body:\n  - {input: x, shape: [B, 3]}\n"

BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]",
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]",
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]",
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]",
        "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]",
        "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]",
        "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]",
        "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]",
        "defs: [*i]",
    ]
)

CASES = [
    # YAML that would construct Python objects or run commands under an unsafe loader.
    Case(
        "yaml_python_apply",
        f'defs: !!python/object/apply:os.system ["touch {PWNED}"]\n',
        file="hostile.yaml",
        expect="YAMLFormatError",
    ),
    Case(
        "yaml_python_object_new",
        f'defs:\n- !!python/object/new:subprocess.Popen [["touch", "{PWNED}"]]\n',
        file="hostile.yaml",
        expect="YAMLFormatError",
    ),
    Case(
        "yaml_python_name",
        "defs: !!python/name:os.system\n",
        file="hostile.yaml",
        expect="YAMLFormatError",
    ),
    Case(
        "yaml_tag_in_value",
        YAML_HEAD
        + f'  - let: y\n    value: !!python/object/apply:os.system ["touch {PWNED}"]\n  - return: x\n',
        file="hostile.yaml",
        expect="YAMLFormatError",
    ),
    Case("yaml_billion_laughs", BILLION_LAUGHS, mode="parse", file="hostile.yaml"),
    Case(
        "yaml_deep_nesting",
        "defs: " + "[" * 100_000 + "]" * 100_000 + "\n",
        mode="parse",
        file="hostile.yaml",
    ),
    # Expressions reaching for Python internals.
    Case("dunder_attribute", _net("y = x.__class__"), expect="EvaluationError"),
    Case("dunder_on_constant", _net('y = "".__class__.__mro__'), expect="EvaluationError"),
    Case("dunder_import", _net(f'y = __import__("os").system("touch {PWNED}")'), expect="DSLError"),
    Case("os_system", _net(f'y = os.system("touch {PWNED}")'), expect="DSLError"),
    Case(
        "eval_call",
        _net(f"y = eval(\"__import__('os').system('touch {PWNED}')\")"),
        expect="UndefinedValueError",
    ),
    Case("exec_call", _net(f"y = exec(\"open('{PWNED}', 'w')\")"), expect="UndefinedValueError"),
    Case("open_call", _net(f'y = open("{PWNED}", "w")'), expect="UndefinedValueError"),
    Case("getattr_call", _net('y = getattr(x, "__class__")'), expect="UndefinedValueError"),
    Case("torch_hub_layer", _net('m = torch.hub.load("x/y", "z")'), expect="DSLError"),
    Case("builtin_attribute", _net("y = len.__self__"), expect="EvaluationError"),
    Case(
        "yaml_dunder_expression",
        YAML_HEAD + "  - let: y\n    value: ${x.__class__}\n  - return: x\n",
        file="hostile.yaml",
        expect="EvaluationError",
    ),
    # Imports that leave the spec's directory.
    Case(
        "import_parent_path", 'from "../../../etc/x.net" import A\n' + _net(), expect="ImportError_"
    ),
    Case(
        "import_absolute_path", 'from "/etc/passwd.net" import A\n' + _net(), expect="ImportError_"
    ),
    Case(
        "import_passwd",
        'from "../../../../../../../../etc/passwd" import A\n' + _net(),
        expect=("ImportError_", "DSLSyntaxError"),
    ),
    # Sizes and arithmetic that would eat the machine.
    Case(
        "linear_1e12_build",
        "net Big():\n    input x: [B, 10]\n    fc = Linear(10 ** 12)\n    return fc(x)\n",
        mode="build",
        expect="LimitError",
    ),
    Case(
        "param_tensor_1e12_build",
        "net Big():\n    input x: [B, 10]\n    param w: [10 ** 6, 10 ** 6] = zeros()\n    return x\n",
        mode="build",
        expect="LimitError",
    ),
    Case("power_tower", _net("n = 2 ** 10 ** 10"), expect="LimitError"),
    Case("power_tower_param", _net(params="n=9 ** 9 ** 9"), expect="LimitError"),
    Case(
        "squaring_loop", _net("n = 3", "for i in range(64):", "    n = n * n"), expect="LimitError"
    ),
    Case(
        "doubling_string_loop",
        _net('s = "ab"', "for i in range(64):", "    s = s + s"),
        expect="LimitError",
    ),
    Case("string_repetition", _net('s = "a" * 10 ** 9'), expect="LimitError"),
    Case(
        "nested_repetition",
        _net("s = [[0] * 1000] * 1000000", "t = sum(s, [])"),
        expect="LimitError",
    ),
    Case("string_format_width", _net('s = "%0999999999d" % 1'), expect="EvaluationError"),
    Case("huge_range", _net("for i in range(10 ** 18):", "    pass"), expect="LimitError"),
    Case(
        "nested_empty_loops",
        _net("for i in range(100000):", "    for j in range(100000):", "        pass"),
        expect="LimitError",
    ),
    Case("huge_int_literal", _net("n = " + "9" * 100_000), allow_ok=True),
    # Recursion and nesting.
    Case(
        "block_recursion_1e6",
        "block R(n):\n    input x\n    if n > 0:\n        y = r(x): R(n - 1)\n        return y\n    return x\n\n"
        "net Hostile():\n    input x: [B, 3]\n    return r(x): R(10 ** 6)\n",
        expect="RecursionError_",
    ),
    Case(
        "block_self_recursion",
        "block R():\n    input x\n    return r(x): R()\n\nnet Hostile():\n    input x: [B, 3]\n    return r(x): R()\n",
        expect="RecursionError_",
    ),
    Case(
        "parens_1e5",
        mode="parse",
        extra=(("generate", "parens"), ("n", 100_000)),
        expect="LimitError",
    ),
    Case(
        "indent_1e4",
        "net A():\n" + "".join("    " * (i + 1) + "if true:\n" for i in range(10_000)),
        mode="parse",
        expect=("LimitError", "DSLSyntaxError"),
    ),
    # A file of a million lines: read (and elaborated) or refused, within the time limit.
    Case(
        "lines_1e6", mode="validate", extra=(("generate", "lines"), ("n", 1_000_000)), allow_ok=True
    ),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("project") / "a" / "b" / "c"
    root.mkdir(parents=True)
    PWNED.unlink(missing_ok=True)
    payload = [
        {
            "name": c.name,
            "text": c.text,
            "mode": c.mode,
            "file": c.file,
            "root": str(root),
            "headroom": MEMORY_HEADROOM,
            "limit": TIME_LIMIT,
            **dict(c.extra),
        }
        for c in CASES
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT * (len(CASES) + 2),
        env=env,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert lines, f"the runner failed: {proc.stderr[-3000:]}"
    yield json.loads(lines[-1][len("RESULTS ") :])
    PWNED.unlink(missing_ok=True)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_spec_is_refused(case: Case, results: dict[str, dict]) -> None:
    result = results[case.name]
    assert result["outcome"] in ("dsl", "ok"), f"{case.name}: {result}"
    assert not PWNED.exists(), f"{case.name} ran a command"
    if result["outcome"] == "ok":
        assert case.allow_ok, f"{case.name} was accepted, but must be refused"
        return
    expected = (case.expect,) if isinstance(case.expect, str) else case.expect
    kinds = set(result.get("kinds", [result["kind"]]))  # a subclass (WorkLimitError) counts
    assert "DSLError" in expected or kinds & set(expected), (
        f"{case.name}: {result['kind']}: {result['message']}"
    )
    # A clear error: one line of message, a location, no Python traceback.
    assert result["message"] and "\n" not in result["message"]
    assert "Traceback" not in result["rendered"]
    assert result["seconds"] < TIME_LIMIT


def test_budget_is_configurable() -> None:
    import dsl
    from dsl.errors import LimitError

    spec = "net Small():\n    input x: [B, 10]\n    fc = Linear(10)\n    return fc(x)\n"
    assert sum(p.numel() for p in dsl.build_model(spec, max_params=110).parameters()) == 110
    with pytest.raises(LimitError) as info:
        dsl.build_model(spec, max_params=109)
    assert "110" in info.value.message and "109" in info.value.message
    assert info.value.hint and "max_params" in info.value.hint
    dsl.build_model(spec, max_params=None)
    # A meta build allocates nothing, so the budget does not apply to it.
    big = "net Big():\n    input x: [B, 10]\n    fc = Linear(10 ** 12)\n    return fc(x)\n"
    model = dsl.build_model(big, device="meta")
    assert next(model.parameters()).is_meta
    # validate never allocates: a spec of any size validates.
    dsl.validate(big)
