"""netdsl's benchmark suite (issue 8), run by hand: `python -m benchmarks [--quick]`.

Sections: forward (built model vs hand-written), build, validate, parse, scale. Each prints
medians with min/max over interleaved rounds and the ratio against a reference measured in
the same run; the results also go to benchmarks/results.json (git-ignored).
"""
