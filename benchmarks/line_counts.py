"""`python -m benchmarks.line_counts`: print the README's "Line counts" table.

For each example spec, its length (non-blank lines that are not only a comment) next to the
hand-written PyTorch it replaces, counted the same way with docstrings left out. The
PyTorch side is the reference the tests compare the example with (read from the test files
with `ast`, nothing imported), or torchvision's own source where the reference is
torchvision. Specs that import the standard library (blocks/*.net) are also counted with
the imported files added; that count is the one compared with torchvision's model classes.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BLOCKS = ROOT / "blocks"
TESTS = ROOT / "tests"


def _torchvision(names: list[str]) -> str:
    return "torchvision source: " + ", ".join(f"`{n}`" for n in names)


# example -> (seed system, [(source file, [top-level names])], how the reference is described)
REFERENCES: dict[str, tuple[str, list[tuple[str, list[str]]], str]] = {
    "mnist_mlp": ("S1", [("tests/references.py", ["MnistMLP"])], "references.py `MnistMLP`"),
    "custom_layer": ("S2", [("tests/test_compile.py", ["MyLinear"])], "test_compile.py `MyLinear`"),
    "sequential_positional": (
        "S3",
        [("tests/test_compile.py", ["_positional"])],
        "test_compile.py `_positional`",
    ),
    "sequential_named": ("S3", [("tests/test_compile.py", ["_named"])], "test_compile.py `_named`"),
    "modulelist": ("S4", [("tests/test_compile.py", ["ListMLP"])], "test_compile.py `ListMLP`"),
    "modulelist_order": (
        "S4",
        [("tests/test_compile.py", ["ListOrder"])],
        "test_compile.py `ListOrder`",
    ),
    "moduledict_heads": (
        "S5",
        [("tests/test_compile.py", ["MultiHead"])],
        "test_compile.py `MultiHead`",
    ),
    "unet": (
        "S6",
        [("tests/references.py", ["DoubleConv", "Down", "Up", "OutConv", "UNet"])],
        "references.py `DoubleConv`, `Down`, `Up`, `OutConv`, `UNet`",
    ),
    "resnet18": (
        "S7",
        [
            (
                "torchvision/models/resnet.py",
                ["conv3x3", "conv1x1", "BasicBlock", "Bottleneck", "ResNet"],
            )
        ],
        "torchvision source: `conv3x3`, `conv1x1`, `BasicBlock`, `Bottleneck`, `ResNet`",
    ),
    "resnet50": (
        "S7",
        [
            (
                "torchvision/models/resnet.py",
                ["conv3x3", "conv1x1", "BasicBlock", "Bottleneck", "ResNet"],
            )
        ],
        "torchvision source: `conv3x3`, `conv1x1`, `BasicBlock`, `Bottleneck`, `ResNet`",
    ),
    "vgg16_bn": (
        "S7/S15",
        [("torchvision/models/vgg.py", ["VGG", "make_layers", "cfgs"])],
        "torchvision source: `VGG`, `make_layers`, `cfgs`",
    ),
    "head_surgery": (
        "S8",
        [("tests/test_seed_systems.py", ["_head_surgery_ref"])],
        "test_seed_systems.py `_head_surgery_ref` (+ torchvision)",
    ),
    "two_outputs": (
        "S9",
        [("tests/test_compile.py", ["TwoOutputs"])],
        "test_compile.py `TwoOutputs`",
    ),
    "features": (
        "S10",
        [("tests/test_seed_systems.py", ["_hooked"])],
        "test_seed_systems.py `_hooked`: forward hooks (+ torchvision)",
    ),
    "finetune": (
        "S11",
        [("tests/test_seed_systems.py", ["_finetune_ref"])],
        "test_seed_systems.py `_finetune_ref` (+ torchvision)",
    ),
    "registration": (
        "S12",
        [("tests/test_seed_systems.py", ["Registration"])],
        "test_seed_systems.py `Registration`",
    ),
    "small_conv": (
        "S13",
        [("tests/test_compile.py", ["SmallConv"])],
        "test_compile.py `SmallConv`",
    ),
    "regression_mlp": (
        "S14",
        [("tests/test_seed_systems.py", ["_regression_ref"])],
        "test_seed_systems.py `_regression_ref`",
    ),
    "depthwise": (
        "S16",
        [("tests/test_seed_systems.py", ["DepthwiseSeparable"])],
        "test_seed_systems.py `DepthwiseSeparable`",
    ),
    "dilation": (
        "S17",
        [("tests/test_seed_systems.py", ["_dilated_ref"])],
        "test_seed_systems.py `_dilated_ref` (+ torchvision)",
    ),
    "residual_block": (
        "-",
        [("tests/test_compile.py", ["BasicBlock", "ResidualStage"])],
        "test_compile.py `BasicBlock`, `ResidualStage`",
    ),
    "weight_sharing": ("-", [("tests/test_compile.py", ["Shared"])], "test_compile.py `Shared`"),
    "gpt": (
        "-",
        [("tests/references.py", ["CausalSelfAttention", "MLP", "Block", "GPT"])],
        "references.py `CausalSelfAttention`, `MLP`, `Block`, `GPT`",
    ),
    **{
        example: ("-", [(f"torchvision/models/{source}", names)], _torchvision(names))
        for example, source, names in [
            ("densenet", "densenet.py", ["_DenseLayer", "_DenseBlock", "_Transition", "DenseNet"]),
            (
                "googlenet",
                "googlenet.py",
                ["GoogLeNet", "Inception", "InceptionAux", "BasicConv2d"],
            ),
            (
                "vit",
                "vision_transformer.py",
                ["MLPBlock", "EncoderBlock", "Encoder", "VisionTransformer"],
            ),
        ]
    },
}

# Where the PyTorch side is a whole model's source, the spec is compared with the library
# blocks it imports added; elsewhere (dilation: a ResNet changed by name on both sides) the
# base model is reused on both sides and only the example itself is compared.
WITH_LIBRARY = {"resnet18", "resnet50", "vgg16_bn"}

_IMPORT = re.compile(r"^\s*from\s+(\"[^\"]+\"|\S+)\s+import\b")


def spec_lines(text: str) -> int:
    """Non-blank lines that are not only a comment."""
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))


def imported_library_files(path: Path) -> list[Path]:
    """The standard library files (blocks/NAME.net) a spec imports by name."""
    found = []
    for line in path.read_text().splitlines():
        match = _IMPORT.match(line)
        if match and not match.group(1).startswith('"'):
            candidate = BLOCKS / f"{match.group(1)}.net"
            if candidate.exists() and not (path.parent / candidate.name).exists():
                found.append(candidate)
    return found


def _source_file(rel: str) -> Path:
    if rel.startswith("torchvision/"):
        spec = importlib.util.find_spec("torchvision")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("torchvision is not installed")
        return Path(next(iter(spec.submodule_search_locations))).parent / rel
    return ROOT / rel


def python_lines(path: Path, names: list[str]) -> int:
    """Non-blank, non-comment, non-docstring lines of the named top-level definitions."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
        ):
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    total = 0
    wanted = set(names)
    seen = set()
    for node in tree.body:
        targets: list[str] = []
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            targets = [node.name]
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = [
                t.id
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(t, ast.Name)
            ]
        if not wanted.intersection(targets):
            continue
        seen.update(wanted.intersection(targets))
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        for number in range(start, (node.end_lineno or node.lineno) + 1):
            text = lines[number - 1].strip()
            if text and not text.startswith("#") and number not in docstrings:
                total += 1
    missing = wanted - seen
    if missing:
        raise SystemExit(f"{path}: no top-level {', '.join(sorted(missing))}")
    return total


def rows() -> list[tuple[str, str, int, int | None, int, str]]:
    out = []
    for path in sorted(EXAMPLES.glob("*.net")):
        name = path.stem
        own = spec_lines(path.read_text())
        library = imported_library_files(path)
        with_library = own + sum(spec_lines(p.read_text()) for p in library) if library else None
        if name not in REFERENCES:
            out.append((name, "", own, with_library, 0, "(no reference listed here yet)"))
            continue
        system, sources, described = REFERENCES[name]
        reference = sum(python_lines(_source_file(rel), names) for rel, names in sources)
        if library and name in WITH_LIBRARY:
            described += " — compared with the spec plus " + ", ".join(
                f"blocks/{p.name}" for p in library
            )
        elif library:
            with_library = None  # both sides reuse the same base model
        out.append((name, system, own, with_library, reference, described))
    return out


def table() -> str:
    lines = [
        "| example | seed | spec lines | with imported blocks | PyTorch lines | ratio | PyTorch reference |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    spec_total = ref_total = 0
    for name, system, own, with_library, reference, described in rows():
        counted = with_library if with_library is not None else own
        ratio = f"{counted / reference:.2f}" if reference else "-"
        lines.append(
            f"| `{name}.net` | {system} | {own} | {with_library if with_library is not None else ''} | {reference or '-'} | {ratio} | {described} |"
        )
        if reference:
            spec_total += counted
            ref_total += reference
    lines.append(f"| **total** | | | {spec_total} | {ref_total} | {spec_total / ref_total:.2f} | |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
