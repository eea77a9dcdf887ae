"""Gathering the global batch under torch.distributed.

Every rank contributes its per-sample losses (and domain ids); every rank
then holds the same global batch, in group-rank order, and computes the same
weights. Ranks may hold different numbers of samples: the sizes are
exchanged first, each rank pads its losses to the largest size, and the
padding is cut off after the gather. The first exchange also carries a flag
for invalid local input, so that a bad batch on one rank makes every rank
raise instead of leaving the others waiting in a collective.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

_META_BAD = 2


def active(group: Any) -> bool:
    """Whether torch.distributed is initialised (and the group has more than
    one member)."""
    d = torch.distributed
    if not (d.is_available() and d.is_initialized()):
        return False
    return d.get_world_size(group) > 1


def gather(
    local: Optional[torch.Tensor],
    domains: Optional[torch.Tensor],
    group: Any,
    problem: Optional[BaseException],
    device: torch.device,
) -> tuple[torch.Tensor, Optional[torch.Tensor], int, int, int]:
    """All-gathers the detached float32 losses (and int64 domain ids) of
    every rank in the group.

    Returns (global losses, global domains or None, lo, hi, world size), where
    [lo, hi) is this rank's slice of the global batch. If any rank passed
    invalid input (problem is not None on that rank), every rank raises:
    the rank with the problem raises it, the others a ValueError naming it.
    """
    d = torch.distributed
    world = d.get_world_size(group)
    rank = d.get_rank(group)
    n = 0 if local is None else int(local.numel())
    meta = torch.tensor([n, int(domains is not None), int(problem is not None)], dtype=torch.int64, device=device)
    metas = [torch.empty_like(meta) for _ in range(world)]
    d.all_gather(metas, meta, group=group)
    m = torch.stack(metas).cpu().tolist()
    bad = [k for k in range(world) if m[k][_META_BAD]]
    if problem is not None:
        raise problem
    if bad:
        raise ValueError(f"goreweight: rank(s) {bad} of the process group passed invalid per-sample losses or domains; see the error on those ranks")
    has_dom = {row[1] for row in m}
    if len(has_dom) > 1:
        raise ValueError(
            "goreweight: domains were given on some ranks of the process group but not on others "
            f"(ranks with domains: {[k for k in range(world) if m[k][1]]}); pass them on every rank or on none"
        )
    sizes = [row[0] for row in m]
    mx = max(sizes)
    assert local is not None
    x = local
    if n < mx:
        x = torch.cat([x, x.new_full((mx - n,), float("nan"))])
    parts = [torch.empty(mx, dtype=x.dtype, device=device) for _ in range(world)]
    d.all_gather(parts, x.contiguous(), group=group)
    glob = torch.cat([p[:s] for p, s in zip(parts, sizes)])
    gdom = None
    if domains is not None:
        y = domains
        if n < mx:
            y = torch.cat([y, y.new_zeros(mx - n)])
        dparts = [torch.empty(mx, dtype=y.dtype, device=device) for _ in range(world)]
        d.all_gather(dparts, y.contiguous(), group=group)
        gdom = torch.cat([p[:s] for p, s in zip(dparts, sizes)])
    lo = sum(sizes[:rank])
    return glob, gdom, lo, lo + n, world
