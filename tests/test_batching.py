"""Complete-group batches: every group exactly once per epoch, never split, reshuffled each epoch."""

from __future__ import annotations

import numpy as np
import torch

from pycemrg_scar_reconstruction.batching import plan_epoch


def make_groups(seed, n=300, big=(40, 250)):
    rng = np.random.default_rng(seed)
    count = rng.integers(1, 30, n)
    count[list(big)] = [500, 900]  # two groups larger than the batch size
    offset = np.concatenate([[0], np.cumsum(count)[:-1]])
    member_group = np.repeat(np.arange(n), count)
    return torch.as_tensor(count), torch.as_tensor(offset), member_group


def test_every_group_once_complete_and_contiguous():
    count, offset, member_group = make_groups(0)
    batch = 256
    plan = plan_epoch(count, offset, batch, torch.Generator().manual_seed(0))
    order = plan.member_order.numpy()
    assert np.array_equal(np.sort(order), np.arange(len(member_group)))  # every membership once
    assert np.array_equal(np.sort(plan.group_order.numpy()), np.arange(len(count)))  # every group once
    max_small = int(count[count <= batch].max())
    for b in range(plan.n_batches):
        m0, m1 = plan.member_bounds[b], plan.member_bounds[b + 1]
        g0, g1 = plan.group_bounds[b], plan.group_bounds[b + 1]
        groups = plan.group_order[g0:g1].numpy()
        local = plan.local_group[m0:m1].numpy()
        # local indices address this batch's groups, in order, each group complete
        assert np.array_equal(groups[local], member_group[order[m0:m1]])
        assert np.all(np.diff(local) >= 0) and local[0] == 0 and local[-1] == g1 - g0 - 1
        assert np.array_equal(np.bincount(local), count[groups].numpy())
        if count[groups].max() > batch:
            assert g1 - g0 == 1  # an oversized group is a batch of its own
        else:
            assert m1 - m0 <= batch + max_small


def test_groups_are_reshuffled_every_epoch_and_seeded():
    count, offset, _ = make_groups(1)
    gen = torch.Generator().manual_seed(5)
    a = plan_epoch(count, offset, 256, gen).group_order
    b = plan_epoch(count, offset, 256, gen).group_order
    assert not torch.equal(a, b)
    again = plan_epoch(count, offset, 256, torch.Generator().manual_seed(5)).group_order
    assert torch.equal(a, again)


def test_subsampled_groups_use_at_most_k_distinct_members_of_their_own_group():
    count, offset, member_group = make_groups(2)
    k = 8
    gen = torch.Generator().manual_seed(0)
    plan = plan_epoch(count, offset, 256, gen, max_members=k)
    order = plan.member_order.numpy()
    assert np.array_equal(plan.group_size.numpy(), np.minimum(count[plan.group_order].numpy(), k))
    assert len(order) == int(np.minimum(count.numpy(), k).sum())
    for b in range(plan.n_batches):
        m0, m1 = plan.member_bounds[b], plan.member_bounds[b + 1]
        g0, g1 = plan.group_bounds[b], plan.group_bounds[b + 1]
        groups = plan.group_order[g0:g1].numpy()
        assert np.array_equal(groups[plan.local_group[m0:m1].numpy()], member_group[order[m0:m1]])
    # no membership twice; groups of k or fewer are used whole
    assert len(np.unique(order)) == len(order)
    cnt, off = count.numpy(), offset.numpy()
    small = np.flatnonzero(cnt <= k)
    assert np.isin(np.concatenate([off[g] + np.arange(cnt[g]) for g in small]), order).all()


def test_subsampling_uses_every_member_equally_often_over_epochs():
    count = torch.tensor([40, 3])
    offset = torch.tensor([0, 40])
    gen = torch.Generator().manual_seed(1)
    used = np.zeros(43)
    epochs = 2000
    for _ in range(epochs):
        np.add.at(used, plan_epoch(count, offset, 256, gen, max_members=10).member_order.numpy(), 1)
    assert np.array_equal(used[40:], [epochs] * 3)  # the small group: always whole
    share = used[:40] / epochs  # each of 40 members: 10/40 of the epochs, binomial sd ~0.0097
    assert np.allclose(share, 0.25, atol=0.04), share
    # and the subset changes: a fixed window would use some members every time
    assert share.max() < 0.5


def test_shuffle_within_groups_keeps_group_ranges():
    from pycemrg_scar_reconstruction.batching import shuffle_within_groups

    count, _, member_group = make_groups(3)
    perm = shuffle_within_groups(count, torch.Generator().manual_seed(0)).numpy()
    assert np.array_equal(np.sort(perm), np.arange(len(member_group)))
    assert np.array_equal(member_group[perm], member_group)  # every position stays in its group
    assert not np.array_equal(perm, np.arange(len(perm)))
