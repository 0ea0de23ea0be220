"""A local HighLevel-compatible Contacts API (the "sandbox") for tests, demos and benchmarks.

Start it with ``python -m airflow_provider_contacts.sandbox`` or from Python/pytest with
``airflow_provider_contacts.sandbox.testing.SandboxServer``; see README.md in this package.
"""

from __future__ import annotations

from .config import SandboxConfig

__all__ = ["SandboxConfig"]
