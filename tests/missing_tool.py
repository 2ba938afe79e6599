#!/usr/bin/env python3
"""Registered in place of a test whose tool (node, ...) meson did not find,
so that the test cannot drop out of the suite unnoticed:

    missing_tool.py TOOL TEST

Prints why and exits 77 (meson: SKIP). scripts/check-skips fails a strict
run (GW_STRICT=1, .ci/run) on it unless docs/testing.md allows that skip;
with GW_STRICT=1 in the environment it fails by itself (exit 1)."""
import os
import sys

tool, test = sys.argv[1], sys.argv[2]
print("SKIP: %s is not installed (scripts/setup installs it): %s not run" % (tool, test))
sys.exit(1 if os.environ.get("GW_STRICT") == "1" else 77)
