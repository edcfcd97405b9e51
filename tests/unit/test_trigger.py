"""The record/stop decisions, fed deltas and explicit times only."""

from __future__ import annotations

from motiond.config import MotionConfig
from motiond.detect.trigger import Action, DeltaHistory, RecordingTrigger

FPS = 10.0
QUIET = 0.0
MOVING = 0.05


def make(
    stable_frames: int = 20, min_changed: int = 5, max_clip: float = 600.0
) -> RecordingTrigger:
    config = MotionConfig(stable_frames=stable_frames, min_changed_frames=min_changed)
    return RecordingTrigger(config, max_clip)


def feed(
    trigger: RecordingTrigger, deltas: list[float], start: int = 0, lighting: bool = False
) -> list[Action]:
    return [trigger.update(d, lighting, (start + i) / FPS).action for i, d in enumerate(deltas)]


def test_noise_alone_never_records() -> None:
    trigger = make()
    actions = feed(trigger, [0.001, 0.002, 0.0029, 0.0] * 100)
    assert set(actions) == {Action.NONE}
    assert not trigger.recording


def test_a_changed_frame_starts_a_clip() -> None:
    trigger = make()
    assert feed(trigger, [QUIET, QUIET, MOVING]) == [Action.NONE, Action.NONE, Action.START]
    assert trigger.recording


def test_stops_after_exactly_n_stable_frames() -> None:
    n = 20
    trigger = make(stable_frames=n)
    feed(trigger, [MOVING] * 6)
    actions = feed(trigger, [QUIET] * n, start=6)
    assert actions[: n - 1] == [Action.NONE] * (n - 1)
    assert actions[n - 1] is Action.STOP


def test_a_changed_frame_restarts_the_stable_count() -> None:
    n = 5
    trigger = make(stable_frames=n)
    feed(trigger, [MOVING] * 6)
    feed(trigger, [QUIET] * (n - 1), start=6)
    assert feed(trigger, [MOVING], start=10) == [Action.NONE]
    assert feed(trigger, [QUIET] * (n - 1), start=11) == [Action.NONE] * (n - 1)
    assert feed(trigger, [QUIET], start=15) == [Action.STOP]


def test_delta_equal_to_threshold_is_calm_and_not_changed() -> None:
    trigger = make(stable_frames=3)
    threshold = trigger.threshold
    assert feed(trigger, [threshold] * 10) == [Action.NONE] * 10


def test_two_frame_blip_is_discarded() -> None:
    trigger = make()
    feed(trigger, [MOVING, MOVING])
    decisions = [trigger.update(QUIET, False, (2 + i) / FPS) for i in range(20)]
    stop = decisions[-1]
    assert stop.action is Action.STOP
    assert stop.keep is False
    assert stop.ended is not None and stop.ended.changed_frames == 2


def test_five_changed_frames_are_kept_with_their_numbers() -> None:
    trigger = make()
    feed(trigger, [0.01, 0.03, 0.08, 0.02, 0.01])
    decisions = [trigger.update(QUIET, False, (5 + i) / FPS) for i in range(20)]
    stop = decisions[-1]
    assert stop.keep is True
    assert stop.ended is not None
    assert stop.ended.changed_frames == 5
    assert stop.ended.frames == 25
    assert stop.ended.peak_delta == 0.08
    assert stop.ended.peak_at == 2 / FPS


def test_lighting_frames_do_not_start_a_clip() -> None:
    trigger = make()
    actions = feed(trigger, [0.9] * 5, lighting=True)
    assert actions == [Action.NONE] * 5 and not trigger.recording


def test_hold_off_after_reopen() -> None:
    trigger = make()
    trigger.hold_off(1.0)
    assert feed(trigger, [MOVING] * 10) == [Action.NONE] * 10  # t = 0.0 .. 0.9
    assert feed(trigger, [MOVING], start=10) == [Action.START]  # t = 1.0


def test_max_clip_splits_into_consecutive_clips() -> None:
    trigger = make(max_clip=3.0)
    actions = feed(trigger, [MOVING] * 70)
    assert actions[0] is Action.START
    assert [i for i, a in enumerate(actions) if a is Action.SPLIT] == [30, 60]
    assert trigger.recording


def test_split_keeps_the_ended_clip_and_starts_counting_again() -> None:
    trigger = make(max_clip=1.0)
    decisions = [trigger.update(MOVING, False, i / FPS) for i in range(11)]
    split = decisions[10]
    assert split.action is Action.SPLIT and split.keep
    assert split.ended is not None and split.ended.changed_frames == 10
    assert trigger.clip is not None and trigger.clip.changed_frames == 1


def test_finish_ends_a_clip_in_progress() -> None:
    trigger = make()
    assert trigger.finish().action is Action.NONE
    feed(trigger, [MOVING] * 7)
    decision = trigger.finish()
    assert decision.action is Action.STOP and decision.keep and not trigger.recording


def test_delta_history_ring() -> None:
    history = DeltaHistory(3)
    history.push(0.0)
    history.push(0.0)
    assert not history.is_stable(0.01)  # not full yet
    history.push(0.0)
    assert history.is_stable(0.01)
    history.push(0.5)
    assert not history.is_stable(0.01)
    assert len(history) == 3


def test_a_suspected_tamper_starts_a_clip_and_holds_it_open() -> None:
    trigger = make(stable_frames=3)
    assert trigger.update(QUIET, False, 0.0, suspect=True).action is Action.START
    # Calm frames do not end it while the suspicion lasts...
    for i in range(1, 10):
        assert trigger.update(QUIET, False, i / FPS, suspect=True).action is Action.NONE
    # ... and once it is gone, the usual stable frames do; with no changed frame it is noise.
    actions = [trigger.update(QUIET, False, (10 + i) / FPS).action for i in range(3)]
    decision = trigger.update(QUIET, False, 1.3)
    assert Action.STOP in [*actions, decision.action]


def test_a_clip_during_which_tampering_was_confirmed_is_kept_whatever_its_count() -> None:
    trigger = make(stable_frames=3, min_changed=5)
    trigger.update(QUIET, False, 0.0, suspect=True)
    trigger.keep_clip()
    decisions = [trigger.update(QUIET, False, (1 + i) / FPS) for i in range(3)]
    ended = [d for d in decisions if d.action is Action.STOP]
    assert len(ended) == 1 and ended[0].keep and ended[0].ended is not None
    assert ended[0].ended.changed_frames == 0


def test_no_clip_starts_during_the_hold_off_even_when_suspect() -> None:
    trigger = make()
    trigger.hold_off(until=1.0)
    assert trigger.update(QUIET, False, 0.5, suspect=True).action is Action.NONE
    assert trigger.update(QUIET, False, 1.0, suspect=True).action is Action.START


def test_configure_changes_threshold_and_min_changed_frames() -> None:
    trigger = make(stable_frames=2, min_changed=5)
    trigger.configure(MotionConfig(threshold=0.1, min_changed_frames=2))
    assert trigger.update(0.05, False, 0.0).action is Action.NONE  # below the new threshold
    assert trigger.update(0.2, False, 0.1).action is Action.START
    trigger.update(0.2, False, 0.2)
    trigger.update(0.0, False, 0.3)
    decision = trigger.update(0.0, False, 0.4)
    assert decision.action is Action.STOP and decision.keep  # 2 changed frames are enough


def test_a_kept_clip_split_off_and_merged_is_still_kept() -> None:
    trigger = make(min_changed=5)
    trigger.update(QUIET, False, 0.0, suspect=True)
    trigger.keep_clip()
    first = trigger.split(1.0).ended
    later = trigger.finish().ended
    assert first is not None and later is not None
    merged = first.merged(later)
    assert merged.keep_anyway and trigger.keeps(merged) and merged.changed_frames == 0


def test_a_small_mover_is_a_changed_frame_below_threshold() -> None:
    trigger = RecordingTrigger(MotionConfig(threshold=0.01, stable_frames=2), max_clip=60.0)
    assert trigger.update(0.001, False, 0.0).action is Action.NONE
    started = trigger.update(0.001, False, 0.1, mover=True)
    assert started.action is Action.START and started.changed
    # It keeps the clip going while seen; a lighting change is never one.
    assert trigger.update(0.001, False, 0.2, mover=True).action is Action.NONE
    assert trigger.update(0.001, True, 0.3, mover=True).changed is False
    assert trigger.update(0.0, False, 0.4).action is Action.STOP


def test_a_delta_standing_for_several_frames_counts_that_many() -> None:
    """``detect_fps`` detected one frame in three: the clip stops after the same 20 camera
    frames (7 detections: the ring holds 21) and has the camera's frame counts."""
    trigger = make(stable_frames=20, min_changed=5)
    start = trigger.update(MOVING, False, 0.0, frames=3)
    assert start.action is Action.START
    assert trigger.update(MOVING, False, 0.2, frames=3).action is Action.NONE
    actions = [trigger.update(QUIET, False, 0.4 + 0.2 * i, frames=3) for i in range(7)]
    assert [d.action for d in actions] == [Action.NONE] * 6 + [Action.STOP]
    ended = actions[-1].ended
    assert ended is not None and actions[-1].keep
    assert (ended.frames, ended.changed_frames) == (27, 6)


def test_one_detection_in_several_frames_is_still_noise_below_min_changed_frames() -> None:
    trigger = make(stable_frames=6, min_changed=5)
    trigger.update(MOVING, False, 0.0, frames=2)
    actions = [trigger.update(QUIET, False, 0.2 + 0.2 * i, frames=2) for i in range(3)]
    assert actions[-1].action is Action.STOP
    assert not actions[-1].keep  # 2 changed frames of the camera's, not 5
