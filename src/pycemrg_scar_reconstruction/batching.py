"""Complete-group mini-batches: groups are never split and are shuffled every epoch.

One call per epoch turns a permutation of the groups into contiguous membership ranges, all with
tensor ops on the training device (no Python loop over groups or memberships, no ``unique``).

Large groups (fine meshes hold hundreds of nodes per prism) can be subsampled: each epoch a group
contributes at most ``max_members`` of its memberships, a window at a random start in a fixed
random order of the group (:func:`shuffle_within_groups`), so every membership is equally likely
to be used and the subset changes every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EpochPlan:
    """The batches of one epoch.

    Attributes
    ----------
    member_order : (M,) int64 membership indices, batch after batch, each batch's groups contiguous.
    local_group : (M,) int64 group index of each entry of ``member_order`` within its batch.
    group_order : (G,) int64 the groups in batch order.
    group_size : (G,) int64 memberships used per group this epoch, in batch order (the group's
        count, or ``max_members`` when subsampled).
    member_bounds, group_bounds : Python lists of B + 1 offsets into the two orders above.
    """

    member_order: torch.Tensor
    local_group: torch.Tensor
    group_order: torch.Tensor
    group_size: torch.Tensor
    member_bounds: list[int]
    group_bounds: list[int]

    @property
    def n_batches(self) -> int:
        return len(self.member_bounds) - 1


def shuffle_within_groups(group_count: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A permutation of memberships (sorted by group) that keeps groups in place and shuffles each.

    Parameters
    ----------
    group_count : (G,) int64 memberships per group.
    generator : CPU generator (seeded: the same order on any device).

    Returns
    -------
    (M,) int64 indices: ``x[perm]`` has the same group ranges with a random order inside each.
    """
    group = torch.repeat_interleave(torch.arange(group_count.shape[0], device=group_count.device), group_count)
    key = group.double() + torch.rand(group.shape[0], generator=generator, dtype=torch.float64).to(group.device)
    return torch.argsort(key)


def plan_epoch(
    group_count: torch.Tensor,
    group_offset: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    max_members: int | None = None,
) -> EpochPlan:
    """Shuffle the groups and cut them into batches of about ``batch_size`` memberships.

    Parameters
    ----------
    group_count : (G,) int64 memberships per group.
    group_offset : (G,) int64 first membership of each group (memberships sorted by group).
    batch_size : target memberships per batch; a group larger than this is a batch of its own.
    generator : CPU generator for the shuffle (seeded: same order on any device).
    max_members : use at most this many memberships of a group (a window at a random start of its
        range, wrapping around; see the module docstring); None uses them all.

    Returns
    -------
    EpochPlan covering every group exactly once.
    """
    device = group_count.device
    g = group_count.shape[0]
    perm = torch.randperm(g, generator=generator).to(device)
    count = group_count[perm]
    sizes = count if max_members is None else count.clamp(max=max_members)
    big = sizes > batch_size
    # Small groups: bucket by where they start in the shuffled running total.
    start = torch.cumsum(sizes * ~big, 0) - sizes * ~big
    bucket = torch.div(start, batch_size, rounding_mode="floor")
    n_small = int(bucket.max().item()) + 1 if g else 0
    # Oversized groups: each its own bucket, after the small ones.
    bucket = torch.where(big, n_small + torch.cumsum(big.long(), 0) - 1, bucket)
    order = torch.argsort(bucket, stable=True)
    group_order = perm[order]
    bucket = bucket[order]
    sizes = sizes[order]

    _, per_batch_groups = torch.unique_consecutive(bucket, return_counts=True)
    group_bounds = torch.cat([torch.zeros(1, dtype=torch.long, device=device), torch.cumsum(per_batch_groups, 0)])
    group_ends = torch.cumsum(sizes, 0)
    member_bounds = torch.cat([torch.zeros(1, dtype=torch.long, device=device), group_ends[group_bounds[1:] - 1]])

    # Expand groups into their membership ranges.
    rank = torch.repeat_interleave(torch.arange(g, device=device), sizes)
    within = torch.arange(rank.shape[0], device=device) - (group_ends - sizes)[rank]
    if max_members is not None:
        full = count[order]
        first = (torch.rand(g, generator=generator, dtype=torch.float64).to(device) * full).long()
        within = (first[rank] + within) % full[rank]
    member_order = group_offset[group_order][rank] + within
    batch_of_group = torch.repeat_interleave(torch.arange(per_batch_groups.shape[0], device=device), per_batch_groups)
    local_group = rank - group_bounds[batch_of_group][rank]
    return EpochPlan(member_order, local_group, group_order, sizes, member_bounds.tolist(), group_bounds.tolist())
