"""A local HighLevel-compatible Contacts API (the "sandbox") for tests, demos and benchmarks.

Start it with ``python -m ghl_sandbox`` or from Python/pytest with
``ghl_sandbox.testing.SandboxServer``; see README.md in this package.
"""

from __future__ import annotations

from .config import SandboxConfig

__all__ = ["SandboxConfig"]
