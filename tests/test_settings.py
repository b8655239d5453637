"""Provenance: what every stored run and experiment says about the code that made it."""

from __future__ import annotations

import subprocess

from esrgan_lab import settings


def test_provenance_reads_the_commit_once_per_process(monkeypatch) -> None:
    """A study trains for hours while commits land: every run it makes names the commit
    its process started from (git is asked once), not the checkout's HEAD of the moment."""
    settings.source_state.cache_clear()
    calls: list[list[str]] = []
    real = subprocess.run

    def counting(args, *rest, **kw):
        calls.append(list(args))
        return real(args, *rest, **kw)

    monkeypatch.setattr(subprocess, "run", counting)
    first = settings.provenance()
    asked = [c for c in calls if c[:1] == ["git"]]
    second = settings.provenance()
    assert [c for c in calls if c[:1] == ["git"]] == asked and len(asked) == 2
    head = real(
        ["git", "rev-parse", "HEAD"], cwd=settings.REPO_ROOT, capture_output=True, text=True
    )
    expected = head.stdout.strip() if head.returncode == 0 else None
    assert first["commit"] == second["commit"] == expected
    assert first["dirty"] == second["dirty"]
