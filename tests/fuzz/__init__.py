"""A mutation fuzzer over every shipped spec: each mutated input is validated (and, when it
validates, built) in a worker process under a time and memory limit; anything but a
`DSLError`, a timeout or a memory outlier is an escape.

    python -m tests.fuzz --minutes 30 --seed 1     # a long campaign, by hand
    tests/test_fuzz_campaign.py                    # a short seeded one, in CI
"""
