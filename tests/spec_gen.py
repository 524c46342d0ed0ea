"""A hypothesis strategy for random *valid* `.net` specs, as text.

Nets are random stacks and small DAGs of Conv2d / Linear / BatchNorm / LayerNorm / ReLU /
GELU / MaxPool2d / AvgPool2d layers, residual adds, concats, Sequential stages and modules
applied twice (shared weights), with random widths, kernel sizes, strides, paddings and
input sizes. The generator tracks every value's shape as it goes and only emits what is
shape-valid, so it knows, without asking netdsl, what the spec must give:

- the output shape(s) (without the symbolic batch dim B),
- every parameter's qualified name and the analytic parameter count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

Shape = tuple[int, ...]  # a value's shape without the leading batch dim
# A build-time function that layers' widths are sometimes spelled with: `half(2 * out)`.
PRELUDE = ["def half(n):", "    return n // 2", ""]


@dataclass
class GeneratedSpec:
    text: str
    input_shape: Shape
    outputs: list[Shape]
    params: dict[str, int]  # qualified parameter name -> numel

    @property
    def n_params(self) -> int:
        return sum(self.params.values())

    def input_size(self, batch: int) -> tuple[int, ...]:
        return (batch, *self.input_shape)


@dataclass
class _Layer:
    """One layer call: its text, what it does to a shape, and its own parameters."""

    text: str
    out: Shape
    params: dict[str, int] = field(default_factory=dict)  # name within the module -> numel


def _conv_out(size: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    if not ceil:
        return span // s + 1
    out = -(-span // s) + 1
    if (
        out - 1
    ) * s >= size + p:  # torch: the last window must start inside the input or left padding
        out -= 1
    return out


def _bool(value: bool) -> str:
    return "true" if value else "false"


@st.composite
def _conv(draw: st.DrawFn, shape: Shape, preserve: bool = False, out: int | None = None) -> _Layer:
    c, h, w = shape
    out = out if out is not None else (c if preserve else draw(st.integers(1, 12)))
    if preserve:
        k, s, d = draw(st.sampled_from([1, 3, 5])), 1, 1
        p = k // 2
        if k > 1 and draw(st.booleans()):
            d = 2
            p = d * (k - 1) // 2
    else:
        k = draw(st.integers(1, min(5, h, w) + 1))
        p = draw(st.integers(0, 2))
        s = draw(st.integers(1, 3))
        d = 1
        if k > 1 and draw(st.integers(0, 4)) == 0:
            d = 2
        while d * (k - 1) + 1 > min(h, w) + 2 * p:
            k -= 1
    bias = draw(st.booleans())
    kwargs = [f"kernel_size={k}"]
    if s != 1 or draw(st.booleans()):
        kwargs.append(f"stride={s}")
    if p != 0 or draw(st.booleans()):
        kwargs.append(f"padding={p}")
    if d != 1:
        kwargs.append(f"dilation={d}")
    if not bias:
        kwargs.append("bias=false")
    if draw(st.integers(0, 3)) == 0:  # a keyword through `**{...}`
        key, value = kwargs.pop(0).split("=")
        kwargs.append(f'**{{"{key}": {value}}}')
    # The width through the prelude's `def half(n)`, the arguments through `*[...]`.
    width = f"half({2 * out})" if draw(st.integers(0, 3)) == 0 else str(out)
    positional = f"{c}, {width}" if draw(st.booleans()) else width
    if "," in positional and draw(st.booleans()):
        positional = f"*[{positional}]"
    params = {"weight": out * c * k * k}
    if bias:
        params["bias"] = out
    shape_out = (out, _conv_out(h, k, s, p, d), _conv_out(w, k, s, p, d))
    return _Layer(f"Conv2d({positional}, {', '.join(kwargs)})", shape_out, params)


@st.composite
def _pool(draw: st.DrawFn, shape: Shape) -> _Layer:
    c, h, w = shape
    kind = draw(st.sampled_from(["MaxPool2d", "AvgPool2d"]))
    k = draw(st.integers(1, min(4, h, w)))
    s = draw(st.integers(1, 3))
    p = draw(st.integers(0, k // 2))
    ceil = draw(st.integers(0, 3)) == 0
    kwargs = [f"kernel_size={k}"]
    if draw(st.booleans()) or s != k:
        kwargs.append(f"stride={s}")
    else:
        s = k
    if p:
        kwargs.append(f"padding={p}")
    if ceil:
        kwargs.append("ceil_mode=true")
    return _Layer(
        f"{kind}({', '.join(kwargs)})",
        (c, _conv_out(h, k, s, p, ceil=ceil), _conv_out(w, k, s, p, ceil=ceil)),
    )


@st.composite
def _linear(
    draw: st.DrawFn, shape: Shape, preserve: bool = False, out: int | None = None
) -> _Layer:
    f = shape[-1]
    out = out if out is not None else (f if preserve else draw(st.integers(1, 24)))
    bias = draw(st.booleans())
    positional = f"{f}, {out}" if draw(st.booleans()) else f"{out}"
    text = f"Linear({positional}{'' if bias else ', bias=false'})"
    params = {"weight": out * f}
    if bias:
        params["bias"] = out
    return _Layer(text, (*shape[:-1], out), params)


@st.composite
def _norm(draw: st.DrawFn, shape: Shape) -> _Layer:
    options = ["LayerNorm"]
    if len(shape) == 3:
        options.append("BatchNorm2d")
    else:
        options.append("BatchNorm1d")
    kind = draw(st.sampled_from(options))
    if kind == "LayerNorm":
        n = shape[-1]
        affine = draw(st.booleans())
        explicit = draw(st.booleans())
        args = ([str(n)] if explicit else []) + ([] if affine else ["elementwise_affine=false"])
        return _Layer(
            f"LayerNorm({', '.join(args)})", shape, {"weight": n, "bias": n} if affine else {}
        )
    n = shape[0]
    affine = draw(st.integers(0, 3)) > 0
    args = ([str(n)] if draw(st.booleans()) else []) + ([] if affine else ["affine=false"])
    return _Layer(f"{kind}({', '.join(args)})", shape, {"weight": n, "bias": n} if affine else {})


def _activation(draw: st.DrawFn, shape: Shape) -> _Layer:
    return _Layer(
        draw(
            st.sampled_from(["ReLU()", "GELU()", "ReLU(inplace=true)", 'GELU(approximate="tanh")'])
        ),
        shape,
    )


@st.composite
def _layer(draw: st.DrawFn, shape: Shape) -> _Layer:
    """Any layer that can take `shape`."""
    if len(shape) == 3:
        c, h, w = shape
        choice = draw(st.sampled_from(["conv", "conv", "pool", "norm", "act", "flatten"]))
        if choice == "flatten" and c * h * w <= 1024:
            return _Layer("Flatten()", (c * h * w,))
        if choice == "pool":
            return draw(_pool(shape))
        if choice == "norm":
            return draw(_norm(shape))
        if choice == "act":
            return _activation(draw, shape)
        return draw(_conv(shape))
    choice = draw(st.sampled_from(["linear", "linear", "norm", "act"]))
    if choice == "norm":
        return draw(_norm(shape))
    if choice == "act":
        return _activation(draw, shape)
    return draw(_linear(shape))


def _preserving(draw: st.DrawFn, shape: Shape) -> _Layer:
    """A layer with parameters whose output has its input's shape."""
    return (
        draw(_conv(shape, preserve=True))
        if len(shape) == 3
        else draw(_linear(shape, preserve=True))
    )


class _Body:
    """A graph body being generated: values with shapes, members with parameters."""

    def __init__(self, draw: st.DrawFn, input_shape: Shape) -> None:
        self.draw = draw
        self.lines: list[str] = []
        self.values: list[tuple[str, Shape]] = [("x", input_shape)]
        self.params: dict[str, int] = {}
        self.shared: list[tuple[str, Shape]] = []  # members whose output shape is their input's
        self.count = 0

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def emit(self, line: str, depth: int = 1) -> None:
        self.lines.append("    " * depth + line)

    def member(self, name: str, layer: _Layer) -> None:
        for key, numel in layer.params.items():
            self.params[f"{name}.{key}"] = numel

    def current(self) -> tuple[str, Shape]:
        # Mostly the latest value (a stack), sometimes an earlier one (a DAG).
        if self.draw(st.integers(0, 3)) == 0:
            return self.draw(st.sampled_from(self.values))
        return self.values[-1]

    def push(self, name: str, shape: Shape) -> None:
        self.values.append((name, shape))

    def step(self) -> None:
        draw = self.draw
        src, shape = self.current()
        kind = draw(
            st.sampled_from(
                [
                    "layer",
                    "layer",
                    "layer",
                    "split",
                    "residual",
                    "concat",
                    "sequential",
                    "shared",
                    "functional",
                ]
            )
        )
        if kind == "shared" and self.shared:
            name, needs = draw(st.sampled_from(self.shared))
            matching = [v for v, s in self.values if s == needs]
            if matching:
                value = self.fresh("h")
                self.emit(f"{value} = {name}({draw(st.sampled_from(matching))})")
                self.push(value, needs)
                return
        if kind == "residual":
            layer = _preserving(draw, shape)
            name, value = self.fresh("block"), self.fresh("h")
            self.emit(f"{value} = {name}({src}): {layer.text}")
            self.member(name, layer)
            self.shared.append((name, shape))
            out = self.fresh("h")
            self.emit(
                f"{out} = {src} + {value}"
                if draw(st.booleans())
                else f"{out} = add({value}, {src})"
            )
            self.push(out, shape)
            return
        if kind == "concat":
            dim = 1 if len(shape) == 3 else -1
            branches = []
            for _ in range(draw(st.integers(2, 3))):
                width = draw(st.integers(1, 8))
                layer = (
                    draw(_conv(shape, preserve=True, out=width))
                    if len(shape) == 3
                    else draw(_linear(shape, out=width))
                )
                name, value = self.fresh("branch"), self.fresh("h")
                self.emit(f"{value} = {name}({src}): {layer.text}")
                self.member(name, layer)
                branches.append((value, layer.out))
            out = self.fresh("h")
            self.emit(f"{out} = cat([{', '.join(v for v, _ in branches)}], dim={dim})")
            total = sum(s[0] if len(shape) == 3 else s[-1] for _, s in branches)
            self.push(out, (total, *shape[1:]) if len(shape) == 3 else (*shape[:-1], total))
            return
        if kind == "sequential":
            name, value = self.fresh("stage"), self.fresh("h")
            named = draw(st.booleans())
            self.emit(f"{name} = Sequential:")
            current = shape
            for index in range(draw(st.integers(1, 4))):
                layer = draw(_layer(current))
                child = f"l{index}" if named else str(index)
                self.emit(f"{child} = {layer.text}" if named else layer.text, depth=2)
                self.member(f"{name}.{child}", layer)
                current = layer.out
            self.emit(f"{value} = {name}({src})")
            self.push(value, current)
            return
        if kind == "functional":
            value = self.fresh("h")
            fn = draw(st.sampled_from(["relu", "gelu"]))
            self.emit(f"{value} = {fn}({src})")
            self.push(value, shape)
            return
        if kind == "split" or kind == "shared":
            # Define the member on one line, apply it on the next.
            layer = draw(_layer(shape))
            name, value = self.fresh("m"), self.fresh("h")
            self.emit(f"{name} = {layer.text}")
            self.emit(f"{value} = {name}({src})")
            self.member(name, layer)
            self.push(value, layer.out)
            return
        layer = draw(_layer(shape))
        name, value = self.fresh("m"), self.fresh("h")
        self.emit(f"{value} = {name}({src}): {layer.text}")
        self.member(name, layer)
        self.push(value, layer.out)


def _input_shape(draw: st.DrawFn) -> Shape:
    rank = draw(st.sampled_from([1, 2, 3, 3]))
    if rank == 3:
        return (draw(st.integers(1, 6)), draw(st.integers(3, 20)), draw(st.integers(3, 20)))
    if rank == 2:
        return (draw(st.integers(1, 6)), draw(st.integers(1, 16)))
    return (draw(st.integers(1, 32)),)


def _dims(shape: Shape) -> str:
    return ", ".join(["B", *map(str, shape)])


@st.composite
def graph_specs(draw: st.DrawFn) -> GeneratedSpec:
    """A net with a graph body: named values, skips, concats, shared modules."""
    shape = _input_shape(draw)
    body = _Body(draw, shape)
    for _ in range(draw(st.integers(1, 7))):
        body.step()
    last, last_shape = body.values[-1]
    outputs = [(last, last_shape)]
    if len(body.values) > 2 and draw(st.integers(0, 4)) == 0:
        outputs.append(draw(st.sampled_from(body.values[1:-1])))
    ret = ", ".join(v for v, _ in outputs)
    width = draw(st.integers(1, 9))
    lines = [
        *PRELUDE,
        f"net Gen(width={width}):",
        f"    input x: [{_dims(shape)}]",
        *body.lines,
        f"    return {ret}",
    ]
    return GeneratedSpec("\n".join(lines) + "\n", shape, [s for _, s in outputs], body.params)


@st.composite
def sequential_specs(draw: st.DrawFn) -> GeneratedSpec:
    """`net Gen = Sequential:`: a plain stack."""
    shape = _input_shape(draw)
    lines = [*PRELUDE, "net Gen = Sequential:", f"    input x: [{_dims(shape)}]"]
    params: dict[str, int] = {}
    named = draw(st.booleans())
    current = shape
    for index in range(draw(st.integers(1, 6))):
        layer = draw(_layer(current))
        child = f"layer{index}" if named else str(index)
        lines.append(f"    {child} = {layer.text}" if named else f"    {layer.text}")
        params.update({f"{child}.{k}": v for k, v in layer.params.items()})
        current = layer.out
    return GeneratedSpec("\n".join(lines) + "\n", shape, [current], params)


specs = st.one_of(graph_specs(), graph_specs(), sequential_specs())
