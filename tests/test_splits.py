"""data/splits.py: protocols never put an actor on two sides (except the labelled thesis one)."""
from __future__ import annotations

import numpy as np
import pytest

from mer_ray.config import ACTOR_FOLDS
from mer_ray.data.splits import (TEST, TRAIN, VAL, group_fold, group_key, group_keys, make_plan,
                                 unit_hash)

ACTORS = list(range(1, 25))


def _frames(actors, clips=3, frames=4):
    """Columns of a frames table: actor, speaker, video_id, row key."""
    rows = [(a, str(a), f"v{a}-{c}", f"v{a}-{c}#{f}")
            for a in actors for c in range(clips) for f in range(frames)]
    actor, speaker, vid, row = map(list, zip(*rows))
    return group_keys(actor, speaker, vid), np.array(row, object), np.array(vid, object)


def _sides(groups, split):
    return {name: set(groups[split == name]) for name in (TRAIN, VAL, TEST)}


@pytest.mark.parametrize("fold", range(5))
@pytest.mark.parametrize("val", ["group", "rows", "none"])
def test_actor5fold_no_actor_on_two_sides(fold, val):
    groups, rows, clips = _frames(ACTORS)
    plan = make_plan(groups, "actor5fold", fold, val=val)
    split = plan.assign(groups, rows, clips)
    sides = _sides(groups, split)
    assert sides[TEST] == {f"actor:{a}" for a in ACTOR_FOLDS[fold]}
    assert not sides[TEST] & (sides[TRAIN] | sides[VAL])
    if val == "group":
        assert not sides[TRAIN] & sides[VAL]
        assert sides[VAL] == {f"actor:{a}" for a in ACTOR_FOLDS[(fold + 1) % 5]}
    if val == "rows":   # validation clips come from training actors, a clip stays whole
        for vid in set(clips[split == VAL]):
            assert set(split[clips == vid]) == {VAL}
    if val == "none":
        assert not sides[VAL]
    assert not plan.leaky


@pytest.mark.parametrize("actor", [1, 7, 24])
def test_loso_holds_out_exactly_one_actor(actor):
    groups, rows, clips = _frames(ACTORS)
    plan = make_plan(groups, "loso", actor)
    split = plan.assign(groups, rows, clips)
    sides = _sides(groups, split)
    assert sides[TEST] == {f"actor:{actor}"}
    assert len(sides[VAL]) == 1 and not sides[VAL] & sides[TRAIN]
    assert len(sides[TRAIN]) == 22


def test_thesis_protocol_is_random_over_rows_and_flagged_leaky():
    groups, rows, clips = _frames(ACTORS, clips=5, frames=10)
    plan = make_plan(groups, "thesis", None)
    split = plan.assign(groups, rows, clips)
    assert plan.leaky and plan.to_dict()["leaky"]
    assert 0.15 < np.mean(split == TEST) < 0.25
    # the leak the thesis had: frames of one video on both sides
    straddling = [v for v in set(clips) if len(set(split[clips == v])) > 1]
    assert straddling


def test_split_is_deterministic_and_seeded():
    groups, rows, clips = _frames(ACTORS)
    a = make_plan(groups, "thesis", None, seed=1).assign(groups, rows, clips)
    b = make_plan(groups, "thesis", None, seed=1).assign(groups, rows, clips)
    c = make_plan(groups, "thesis", None, seed=2).assign(groups, rows, clips)
    assert (a == b).all() and not (a == c).all()
    assert unit_hash("x") == unit_hash("x") and 0 <= unit_hash("x") < 1


def test_speakers_and_unknown_clips_are_grouped():
    assert group_key(None, "alice", "v1") == "speaker:alice"
    assert group_key(None, None, "v1") == "video:v1"
    assert group_key(3, "3", "v1") == "actor:3"
    speakers = [f"s{i}" for i in range(40)]
    rows = [(None, s, f"{s}-{c}", f"{s}-{c}#0") for s in speakers for c in range(3)]
    actor, speaker, vid, row = map(list, zip(*rows))
    groups = group_keys(actor, speaker, vid)
    folds_used = {group_fold(g) for g in set(groups)}
    assert len(folds_used) > 1
    fold = sorted(folds_used)[0]
    plan = make_plan(groups, "actor5fold", fold)
    split = plan.assign(groups, np.array(row, object), np.array(vid, object))
    sides = _sides(groups, split)
    assert sides[TEST] and not sides[TEST] & (sides[TRAIN] | sides[VAL])
    assert all(group_fold(g) == fold for g in sides[TEST])


def test_errors_name_the_problem():
    groups, _, _ = _frames([1, 2, 3, 4])      # actors 1-4: folds 4, 0, 1, 4 only
    with pytest.raises(ValueError, match="fold 2 has no rows"):
        make_plan(groups, "actor5fold", 2)
    with pytest.raises(ValueError, match="no rows for actor"):
        make_plan(groups, "loso", 9)
    with pytest.raises(ValueError, match="unknown protocol"):
        make_plan(groups, "random", 0)


def test_small_actor_sets_fall_back_to_row_validation():
    groups, rows, clips = _frames([1, 2])
    plan = make_plan(groups, "loso", 1)
    assert plan.val == "rows"
    split = plan.assign(groups, rows, clips)
    assert set(groups[split == TEST]) == {"actor:1"}
    assert set(groups[split != TEST]) == {"actor:2"}
