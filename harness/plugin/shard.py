"""``--shard K/N``: run the K-th of N stable, disjoint parts of the items, for spreading a
big run over several CI machines. Whole dependency groups stay together (all items of an
app, and of apps joined by ``dependsOn``); groups are dealt round-robin in name order, so
every group lands in exactly one shard and shards are balanced by group count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    total: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, sep, total = text.partition("/")
        if not sep or not index.isdigit() or not total.isdigit():
            raise pytest.UsageError(f"--shard {text!r}: write K/N, e.g. 2/4")
        shard = cls(int(index), int(total))
        if not 1 <= shard.index <= shard.total:
            raise pytest.UsageError(f"--shard {text!r}: K must be between 1 and N")
        return shard


def group_of(item: pytest.Item) -> str:
    """The item's xdist group (suite items), else its module: what must stay together."""
    marker = item.get_closest_marker("xdist_group")
    if marker is not None:
        return str(marker.kwargs.get("name", marker.args[0] if marker.args else ""))
    return item.nodeid.split("::", 1)[0]


def select(
    items: Sequence[pytest.Item], shard: Shard
) -> tuple[list[pytest.Item], list[pytest.Item]]:
    """(kept, deselected) for ``shard``."""
    groups = sorted({group_of(item) for item in items})
    mine = {
        group for position, group in enumerate(groups) if position % shard.total == shard.index - 1
    }
    kept = [item for item in items if group_of(item) in mine]
    dropped = [item for item in items if group_of(item) not in mine]
    return kept, dropped
