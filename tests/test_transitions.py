"""Blended prompts: weighted texts, transitions between prompts, their storyboard rules, plan, sampler
and live command."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import rel_err

from longlive_cli.blending import blend, segment_embedding, slerp
from longlive_cli.live import LiveSchedule, LiveSession, PromptReader
from longlive_cli.models.spec import SamplerConfig
from longlive_cli.models.transformer import CausalWanTransformer
from longlive_cli.samplers import longlive as longlive_sampler
from longlive_cli.samplers.longlive import sample_longlive
from longlive_cli.schedule import FixedSchedule, Transition, conditioning
from longlive_cli.storyboard import (
    PromptSpec,
    Storyboard,
    StoryboardError,
    format_plan,
    make_plan,
    parse_storyboard,
)
from longlive_cli.storyboard.schema import WeightedText, transition_blocks

H, W = 4, 6


# --- blending --------------------------------------------------------------------------------------


def test_linear_blend_normalises_weights_and_keeps_the_weighted_norm():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 5, 8, generator=g), 3 * torch.randn(1, 5, 8, generator=g)
    out = blend([a, b], [2, 6], "linear")
    assert torch.allclose(out, blend([a, b], [0.25, 0.75], "linear"))
    direction = 0.25 * a + 0.75 * b
    assert torch.allclose(out / out.norm(), direction / direction.norm(), atol=1e-6)
    assert math.isclose(out.norm().item(), (0.25 * a.norm() + 0.75 * b.norm()).item(), rel_tol=1e-6)
    assert blend([a], [0.3]) is a  # one text: its own embedding


def test_blend_pads_shorter_embeddings_with_zero_rows_as_wan_does():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(1, 3, 8, generator=g), torch.randn(1, 6, 8, generator=g)
    padded_a = torch.nn.functional.pad(a, (0, 0, 0, 3))
    for method in ("linear", "slerp"):
        out = blend([a, b], [0.4, 0.6], method)
        assert out.shape == (1, 6, 8) and torch.equal(out, blend([padded_a, b], [0.4, 0.6], method))


def test_slerp_per_token_and_its_parallel_fallback():
    a = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    b = torch.tensor([[[0.0, 1.0], [2.0, 0.0]]])
    mid = slerp(a, b, 0.5)
    # Row by row, on the circle: unit rows stay unit, the midpoint is at 45 degrees.
    assert torch.allclose(mid[0, 0], torch.tensor([1.0, 1.0]) / math.sqrt(2), atol=1e-6)
    assert torch.allclose(mid[0, 1], torch.tensor([2.0, 2.0]) / math.sqrt(2), atol=1e-6)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)
    assert torch.equal(slerp(a, 2 * a, 0.25), 0.75 * a + 0.25 * (2 * a))  # parallel: a weighted sum
    with pytest.raises(ValueError, match="slerp blends two"):
        blend([a, a, b], [1, 1, 1], "slerp")


# --- the storyboard --------------------------------------------------------------------------------

STORY = """\
duration: 8s
prompts:
  - at: 0s
    text: a red fox in the snow
  - at: 3s
    text:
      - {text: a red fox asleep, weight: 0.7}
      - {text: a snowy forest at night, weight: 0.3}
    transition: 2s
  - at: 6s
    text: a lighthouse
    blend: slerp
    transition: 1.5s
"""


def test_transition_blocks_are_those_that_start_within_its_time():
    assert [transition_blocks(s) for s in (0, 0.1, 0.75, 0.76, 1.5, 2, 2.25)] == [0, 1, 1, 2, 2, 3, 3]


def test_a_storyboard_with_weighted_texts_and_transitions_plans_them():
    sb = parse_storyboard(STORY)
    assert sb.prompts[1].parts == (
        WeightedText("a red fox asleep", 0.7),
        WeightedText("a snowy forest at night", 0.3),
    )
    assert sb.prompts[1].transition_s == 2 and sb.prompts[2].blend == "slerp"
    plan = make_plan(sb)
    one, two = plan.segments[1], plan.segments[2]
    assert one.texts == ("a red fox asleep", "a snowy forest at night") and one.parts[0][1] == pytest.approx(
        0.7
    )
    assert (one.start_block, one.transition_blocks, two.start_block, two.transition_blocks) == (4, 3, 8, 2)
    assert one.text == "a red fox asleep (0.70) + a snowy forest at night (0.30)"
    text = format_plan(plan)
    assert "transition 2.00 s: blocks 4-6 at 0.25, 0.50, 0.75 of the new prompt, linear blend" in text
    assert "transition 1.50 s: blocks 8-9 at 0.33, 0.67 of the new prompt, slerp blend" in text
    plain = make_plan(parse_storyboard("duration: 4s\nprompts: [{at: 0, text: a}, {at: 2, text: b}]\n"))
    assert "transition" not in format_plan(plain) and not plain.has_transitions and plan.has_transitions


@pytest.mark.parametrize(
    ("edit", "field", "needle"),
    [
        (
            (
                "  - at: 0s\n    text: a red fox in the snow\n",
                "  - at: 0s\n    text: a\n    transition: 1s\n",
            ),
            "prompts[0].transition",
            "nothing to blend from",
        ),
        (("at: 6s", "at: 4s"), "prompts[2].at", "during the transition of prompts[1]"),
        (("blend: slerp", "blend: cubic"), "prompts[2].blend", "is not a blend"),
        (
            ("weight: 0.3}", "weight: 0.3}\n      - {text: c, weight: 1}\n    blend: slerp"),
            "prompts[1].blend",
            "slerp works between two texts",
        ),
        (("weight: 0.7", "weight: 0"), "prompts[1].text[0].weight", "greater than 0"),
        (("weight: 0.7", "weight: -1"), "prompts[1].text[0].weight", "greater than 0"),
        (("weight: 0.7", "weight: lots"), "prompts[1].text[0].weight", "is not a weight"),
        (
            ("{text: a red fox asleep, weight: 0.7}", "{text: a red fox asleep}"),
            "prompts[1].text[0]",
            "missing key 'weight'",
        ),
        (
            ("{text: a red fox asleep, weight: 0.7}", "{text: a, weight: 1, colour: red}"),
            "prompts[1].text[0]",
            "unknown key 'colour'",
        ),
        (("transition: 2s", "transition: soon"), "prompts[1].transition", "is not a time"),
        (
            (
                "    text:\n      - {text: a red fox asleep, weight: 0.7}\n"
                "      - {text: a snowy forest at night, weight: 0.3}\n",
                "    text: []\n",
            ),
            "prompts[1].text",
            "0 weighted texts",
        ),
    ],
)
def test_storyboard_rules_for_blends_name_the_field_and_line(edit, field, needle):
    text = STORY.replace(*edit)
    assert text != STORY
    with pytest.raises(StoryboardError) as err:
        parse_storyboard(text, path="s.yaml")
    assert err.value.field == field and needle in err.value.message and err.value.line is not None, str(
        err.value
    )


def test_hand_built_storyboards_are_checked_by_the_same_rules():
    parts = tuple(WeightedText(t, 1.0) for t in "abc")
    prompts = (PromptSpec(0.0, "x", None), PromptSpec(2.0, "abc", None, parts=parts, blend="slerp"))
    with pytest.raises(StoryboardError, match="slerp works between two"):
        make_plan(Storyboard(path=None, duration_s=4.0, prompts=prompts))
    late = (PromptSpec(0.0, "x", None), PromptSpec(1.0, "y", None, transition_s=5.0))
    plan = make_plan(Storyboard(path=None, duration_s=3.0, prompts=late))  # the video ends during it
    assert plan.segments[1].transition_blocks == 7 and "the video ends at block 3" in format_plan(plan)


# --- the schedule and the sampler ------------------------------------------------------------------


@pytest.fixture(scope="module")
def embeds() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(1, 20, 32, generator=g), 2 * torch.randn(1, 12, 32, generator=g)]


SEGMENTS = [0, 0, 0, 1, 1, 1, 1, 1]


def sample(model, embeds, transitions, sampler_config=SamplerConfig(), segments=SEGMENTS):
    schedule = FixedSchedule(embeds, segments, transitions=transitions)
    out = sample_longlive(
        model, schedule, latent_height=H, latent_width=W, seed=3, sampler_config=sampler_config
    )
    return [b.latents for b in out]


def test_fixed_schedule_walks_the_transition():
    schedule = FixedSchedule([torch.zeros(1, 1, 2)] * 2, SEGMENTS, transitions=[(0, "linear"), (3, "slerp")])
    got = [schedule.transition(b) for b in range(len(SEGMENTS))]
    assert got[:3] == [None] * 3 and got[6:] == [None, None]
    assert got[3:6] == [Transition(0, 1, t, "slerp", k, 3) for k, t in enumerate((0.25, 0.5, 0.75))]


@pytest.mark.slow
def test_a_transition_differs_from_a_hard_switch_and_ends_on_the_target(model, embeds, monkeypatch):
    seen: list[torch.Tensor] = []
    original = CausalWanTransformer.encode_prompt
    monkeypatch.setattr(
        CausalWanTransformer, "encode_prompt", lambda self, e: seen.append(e) or original(self, e)
    )
    smooth = sample(model, embeds, [(0, "linear"), (3, "linear")])
    # One conditioning per change: prompt 0, three blends (blocks 3-5), then prompt 1 itself (block 6).
    assert len(seen) == 5 and torch.equal(seen[0], embeds[0]) and torch.equal(seen[4], embeds[1])
    for k, t in enumerate((0.25, 0.5, 0.75)):
        assert torch.equal(seen[1 + k], blend(embeds, [1 - t, t], "linear"))
    hard, none = sample(model, embeds, None), sample(model, embeds, None, segments=[0] * 8)
    assert all(torch.equal(smooth[i], hard[i]) for i in range(3))
    assert rel_err(smooth[3], hard[3]) > 1e-3 and rel_err(smooth[3], none[3]) > 1e-3  # in between
    # After the transition the conditioning is the target's; the video keeps the memory of the blend.
    assert rel_err(smooth[7], hard[7]) > 0


@pytest.mark.parametrize(("policy", "recaches"), [("every", 4), ("first", 1), ("none", 0)])
def test_transition_recache_policies(model, embeds, monkeypatch, policy, recaches):
    calls: list[int] = []
    original = longlive_sampler.recache
    monkeypatch.setattr(
        longlive_sampler,
        "recache",
        lambda m, c, r, start, *a: calls.append(start) or original(m, c, r, start, *a),
    )
    sample(model, embeds, [(0, "linear"), (3, "linear")], SamplerConfig(transition_recache=policy))
    assert len(calls) == recaches
    calls.clear()
    sample(model, embeds, None, SamplerConfig(transition_recache=policy))  # a hard switch always re-caches
    assert calls == [9]


def test_weighted_segment_embedding_and_conditioning():
    plan = make_plan(parse_storyboard(STORY))
    g = torch.Generator().manual_seed(2)
    by_text = {t: torch.randn(1, 4 + i, 8, generator=g) for i, s in enumerate(plan.segments) for t in s.texts}
    seg = plan.segments[1]
    want = blend([by_text["a red fox asleep"], by_text["a snowy forest at night"]], [0.7, 0.3], "linear")
    assert torch.allclose(segment_embedding(seg, by_text), want)
    assert segment_embedding(plan.segments[0], by_text) is by_text["a red fox in the snow"]
    schedule = FixedSchedule.for_plan(plan, [segment_embedding(s, by_text) for s in plan.segments])
    mix = schedule.transition(9)
    assert mix == Transition(1, 2, 2 / 3, "slerp", 1, 2)
    assert torch.equal(
        conditioning(schedule, 2, mix),
        blend([schedule.embedding(1), schedule.embedding(2)], [1 / 3, 2 / 3], "slerp"),
    )


# --- live: `:transition` ---------------------------------------------------------------------------


def test_live_transition_command_and_the_session_storyboard(tmp_path):
    schedule = LiveSchedule(lambda text: torch.zeros(1, 1, 4), 40, lambda: False)
    reader = PromptReader(schedule)
    reader.handle(b"a red fox")
    assert schedule.wait_for_first(timeout=5) == "a red fox"
    assert [schedule.segment_for_block(b) for b in range(3)] == [0, 0, 0]
    reader.handle(b":transition 2s slerp")
    reader.handle(b"the fox sleeps")
    steps = []
    for b in range(3, 10):
        seg = schedule.segment_for_block(b)
        steps.append((seg, schedule.transition(b)))
        if b == 4:
            reader.handle(b"a snowy forest")  # arrives during the transition: waits for its end
    assert steps[:3] == [(1, Transition(0, 1, t, "slerp", k, 3)) for k, t in enumerate((0.25, 0.5, 0.75))]
    assert steps[3:] == [(2, None)] * 4  # block 6: the transition is over, the waiting prompt switches (hard)
    for bad in (b":transition", b":transition soon", b":transition 2s cubic"):
        reader.handle(bad)
    assert schedule.next_transition is None

    class Fake:
        from longlive_cli.geometry import WAN21 as geometry

    plan = make_plan(parse_storyboard("duration: 30s\nseed: 1\nprompts: [{at: 0, text: a red fox}]\n"))
    session = LiveSession(
        Fake(), plan, recording=None, sinks=[], session_path=tmp_path / "s.yaml", schedule=schedule
    )
    session.save_session()
    replay = make_plan(parse_storyboard((tmp_path / "s.yaml").read_text()))
    fixed = FixedSchedule.for_plan(replay, [torch.zeros(1, 1, 4)] * 3)
    assert [(fixed.segment_for_block(b), fixed.transition(b)) for b in range(3, 10)] == steps


def test_transitions_need_the_longlive_sampler(tmp_path):
    from longlive_cli.errors import InputError
    from longlive_cli.models.spec import check_transitions, load_spec

    spec_file = tmp_path / "rf.yaml"
    spec_file.write_text("base: somewhere\nsampler: rolling-forcing\n")
    with pytest.raises(InputError, match=r"need a sampler that can \(longlive\)"):
        check_transitions(load_spec(spec_file), True)
    check_transitions(load_spec(spec_file), False)  # hard switches and weighted texts are fine
    schedule = LiveSchedule(lambda text: torch.zeros(1, 1, 4), 10, lambda: False)
    PromptReader(schedule, transitions=False).handle(b":transition 2s")
    assert schedule.next_transition is None


def test_dry_run_shows_transitions(tmp_path):
    from typer.testing import CliRunner

    from longlive_cli.cli import app

    story = tmp_path / "t.yaml"
    story.write_text(STORY)
    result = CliRunner().invoke(app, ["generate", str(story), "--dry-run", "--model", "tiny-random"])
    assert result.exit_code == 0, result.output
    assert "a red fox asleep (0.70) + a snowy forest at night (0.30)" in result.stdout
    assert (
        "transition 2.00 s: blocks 4-6 at 0.25, 0.50, 0.75 of the new prompt, linear blend" in result.stdout
    )
