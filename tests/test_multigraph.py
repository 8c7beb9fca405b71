"""The GSL multigraph: a partner shares exactly its attribute unless counted as a fallback, fallbacks happen only
where no exact partner exists, and the cover query covers every wanted value from the given items only."""

import numpy as np
import pytest

from studio.data.multigraph import GroupSampler, cover
from studio.data.splits import ZeroShotSplit
from studio.errors import StudioError


def exact_partner_exists(codes: np.ndarray, items: np.ndarray, centre: int, j: int) -> bool:
    sub = codes[items]
    differs = sub != codes[centre]
    shares = ~differs[:, j]
    differs[:, j] = True
    return bool((shares & differs.all(axis=1) & (items != centre)).any())


def check_batch(codes: np.ndarray, items: np.ndarray, groups: np.ndarray, fallback: np.ndarray) -> None:
    m = codes.shape[1]
    allowed = set(items.tolist())
    for b in range(len(groups)):
        centre = groups[b, 0]
        for j in range(m):
            partner = groups[b, 1 + j]
            assert partner in allowed
            assert codes[partner, j] == codes[centre, j], "a partner always shares its attribute"
            others = [k for k in range(m) if k != j]
            is_exact = partner != centre and all(codes[partner, k] != codes[centre, k] for k in others)
            assert is_exact == (not fallback[b, j]), "flagged exactly when the partner is not exact"
            if fallback[b, j]:
                assert not exact_partner_exists(codes, items, centre, j), "fell back although an exact one exists"


@pytest.mark.parametrize("fixture", ["tiny_fonts", "tiny_shapes"])
def test_partners_share_exactly_their_attribute(fixture, request):
    ds = request.getfixturevalue(fixture)
    split = ZeroShotSplit.make(ds.codes, 0.25, seed=0)
    sampler = GroupSampler(ds.codes, split.train)
    rng = np.random.default_rng(0)
    flagged = 0
    for _ in range(10):
        batch = sampler.sample(32, rng)
        assert batch.groups.shape == (32, 1 + len(ds.schema)) and batch.fallback.shape == (32, len(ds.schema))
        check_batch(ds.codes, split.train, batch.groups, batch.fallback)
        flagged += int(batch.fallback.sum())
    assert sampler.fallbacks == flagged and sampler.partners_drawn == 10 * 32 * len(ds.schema)
    assert sampler.fallback_rate == pytest.approx(flagged / sampler.partners_drawn)


def test_every_centre_of_a_sparse_set():
    """Shapes-like table with few values per attribute, where random tries alone would often miss."""
    grids = np.meshgrid(*[np.arange(2)] * 6, indexing="ij")
    codes = np.stack([g.reshape(-1) for g in grids], axis=1)
    items = np.flatnonzero(np.random.default_rng(1).random(len(codes)) < 0.6)
    sampler = GroupSampler(codes, items, tries=4)
    batch = sampler.partners(items, np.random.default_rng(2))
    check_batch(codes, items, batch.groups, batch.fallback)
    assert sampler.fallbacks == int(batch.fallback.sum()) < batch.fallback.size


def test_rare_exact_partner_is_found():
    # 2,000 items share attribute 0 with the centre; only item 1999 also differs in attribute 1.
    codes = np.zeros((2000, 2), dtype=np.int16)
    codes[1999, 1] = 1
    sampler = GroupSampler(codes, np.arange(2000))
    batch = sampler.partners(np.zeros(50, dtype=np.int64), np.random.default_rng(0))
    assert (batch.groups[:, 1] == 1999).all() and not batch.fallback[:, 0].any()
    # Attribute 1: every item sharing it also shares attribute 0, so each is a counted fallback.
    assert batch.fallback[:, 1].all() and sampler.fallbacks == 50
    assert (codes[batch.groups[:, 2], 1] == 0).all() and (batch.groups[:, 2] != 0).all()


def test_crafted_table_without_exact_partners():
    codes = np.array([[0, 0, 0], [0, 0, 1], [1, 1, 1], [1, 0, 0]])
    items = np.arange(4)
    sampler = GroupSampler(codes, items)
    batch = sampler.partners(np.array([0, 2]), np.random.default_rng(0))
    check_batch(codes, items, batch.groups, batch.fallback)
    # Centre 0: the only item with attribute 0 = 0 besides itself is item 1; for attribute 2 it is item 3.
    assert batch.groups[0, 1] == 1 and batch.fallback[0, 0]
    assert batch.groups[0, 3] == 3 and batch.fallback[0, 2]
    # Centre 2 is alone in having attribute 1 = 1: it stands in for itself, flagged.
    assert batch.groups[1, 2] == 2 and batch.fallback[1, 1]
    # Attribute 0 = 1 is shared with item 3, which differs in attributes 1 and 2: exact.
    assert batch.groups[1, 1] == 3 and not batch.fallback[1, 0]
    assert sampler.fallbacks == int(batch.fallback.sum())


def test_single_attribute_partner_is_another_item():
    codes = np.array([[0], [0], [1], [1]])
    sampler = GroupSampler(codes, np.arange(4))
    batch = sampler.partners(np.array([0, 1, 2, 3] * 10), np.random.default_rng(0))
    assert (batch.groups[:, 1] != batch.groups[:, 0]).all() and not batch.fallback.any()


def test_same_seed_same_groups(tiny_fonts):
    split = ZeroShotSplit.make(tiny_fonts.codes, 0.25, seed=0)
    a = GroupSampler(tiny_fonts.codes, split.train).sample(16, np.random.default_rng(4))
    b = GroupSampler(tiny_fonts.codes, split.train).sample(16, np.random.default_rng(4))
    assert np.array_equal(a.groups, b.groups) and np.array_equal(a.fallback, b.fallback)


def test_needs_two_items(tiny_fonts):
    with pytest.raises(StudioError, match="at least two"):
        GroupSampler(tiny_fonts.codes, np.array([3]))


# --- cover query --------------------------------------------------------------------------------


def test_cover_shows_every_wanted_value_from_the_given_items(tiny_fonts):
    codes = tiny_fonts.codes
    split = ZeroShotSplit.make(codes, 0.25, seed=0)
    train = set(split.train.tolist())
    rng = np.random.default_rng(0)
    for target in split.test:
        wanted = codes[target]
        for chosen in (cover(codes, split.train, wanted), cover(codes, split.train, wanted, rng=rng)):
            assert sorted(chosen) == list(range(codes.shape[1]))
            for j, item in chosen.items():
                assert item in train and item != target
                assert codes[item, j] == wanted[j]
            assert len(set(chosen.values())) < codes.shape[1]  # greedy: items cover several values at once


def test_cover_of_a_known_item_is_that_item(tiny_fonts):
    items = np.arange(len(tiny_fonts))
    chosen = cover(tiny_fonts.codes, items, tiny_fonts.codes[17])
    assert set(chosen.values()) == {17}


def test_cover_fails_when_a_value_is_absent(tiny_fonts):
    codes = tiny_fonts.codes
    letter_a = tiny_fonts.schema["letter"].index("A")
    without_a = np.flatnonzero(codes[:, 0] != letter_a)
    wanted = codes[np.flatnonzero(codes[:, 0] == letter_a)[0]]
    with pytest.raises(StudioError, match="#0"):
        cover(codes, without_a, wanted)
    with pytest.raises(StudioError, match="letter=A"):
        cover(codes, without_a, wanted, schema=tiny_fonts.schema)
