"""What a benchmark ran on, and appending its rows to a CSV that keeps every past run."""

from __future__ import annotations

import csv
import datetime
import os
import platform
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("keras", "tensorflow-cpu", "tensorflow", "jax", "jaxlib", "torch", "numpy")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def describe_machine() -> dict[str, Any]:
    """CPU model, core counts, OS, Python and package versions, and a UTC timestamp."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 0
    description: dict[str, Any] = {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count() or 0,
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    for package in PACKAGES:
        description[package.replace("-", "_")] = _version(package)
    return description


def append_csv_row(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Append ``rows`` to the CSV at ``path`` (created with a header if new).

    Every row must have the same keys; when the file exists its header must hold no column the
    rows lack, so old and new runs stay in one tidy table. Columns the rows add (a package
    version recorded since) are added to the file, empty in its earlier rows.
    """
    rows = [dict(row) for row in rows]
    path = Path(path)
    if not rows:
        return path
    fields = list(rows[0])
    for row in rows:
        if set(row) != set(fields):
            raise ValueError(f"rows have different columns: {sorted(row)} vs {sorted(fields)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    exists = path.exists() and path.stat().st_size > 0
    if exists:
        with open(path, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
        if not set(header) <= set(fields):
            raise ValueError(f"{path} has columns {header}; these rows have {fields}")
        if set(header) != set(fields):
            _add_columns(path, fields)
        else:
            fields = header
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        if not exists:
            writer.writeheader()
        writer.writerows(rows)
    return path


def _add_columns(path: Path, fields: list[str]) -> None:
    """Rewrite the CSV at ``path`` with the columns ``fields`` (a superset of its own, in that
    order), empty where its rows have no value."""
    with open(path, newline="", encoding="utf-8") as handle:
        old = list(csv.DictReader(handle))
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(old)
    os.replace(temporary, path)
