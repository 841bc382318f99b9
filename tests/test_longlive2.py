"""LongLive 2.0 (architecture ``longlive-2.0``): the geometry, the presets and spec files, the flow-UniPC
solver,
and parity of ``longlive generate`` with the official 2.0 inference.

The release is written here in the official formats at toy size: a Wan2.2-style base folder
(``transformer/config.json`` with 48 latent channels, the tiny UMT5 and tokenizer, a tiny Wan2.2 VAE with
z_dim
48) and a merged generator like ``model_bf16.pt`` (``{"generator": {"model.<Wan key>": bf16},
"checkpoint_format":
...}``). The latents of ``generate --save-latents`` must equal :mod:`official_v2` (an independent reference of
the
official inference: its own loop, its own UniPC, the official token buffer) to 1e-4 relative, CPU float32.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from helpers import LINEARS, peft_format, wan_layout
from official_v2 import PREFIX, load_official_transformer, official_grid, official_v2_latents, unipc_block
from typer.testing import CliRunner

from longlive_cli.cli import app
from longlive_cli.geometry import WAN22
from longlive_cli.latents import read_latents
from longlive_cli.models.spec import PRESETS, ModelUnavailableError, components, resolve_model
from longlive_cli.models.transformer import CausalWanTransformer
from longlive_cli.models.umt5 import TextEncoder, build_tiny_text_encoder
from longlive_cli.models.wan22 import tiny_transformer_config_2, tiny_vae_config_2
from longlive_cli.samplers.unipc import FlowUniPC, flow_unipc_grid
from longlive_cli.storyboard import load_storyboard, make_plan
from longlive_cli.text import encode_prompts

CFG2 = tiny_transformer_config_2()
LAYOUT2 = wan_layout(CFG2)
RES = "64x32"  # 2 tokens per latent frame: the parity runs stay fast
H, W = 2, 4  # latent size at 64x32 (16x)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread for these toy-sized tensors: with two, on the 2 shared cores of CI, the threads
    mostly wait for each other (the tiny Wan2.2 VAE decoding 96 latent frames: 9.9 s with 2 threads, 0.48 s
    with 1). Both sides of every parity check run in this process, so the comparison is unchanged."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------ geometry, presets
def test_geometry_has_the_official_numbers():
    g = WAN22
    assert (g.fps, g.frames_per_block, g.latent_channels, g.vae_spatial_stride) == (24, 8, 48, 16)
    assert g.native_resolution == (1280, 704) and g.tokens_per_frame(1280, 704) == 880
    assert g.block_video_frames == 32 and g.block_s == pytest.approx(4 / 3)
    # block b > 0 starts at video frame 32b - 3; `at: (32b - 3)/24 s` switches at block b; 381/24 s is 12
    # blocks
    for b in (1, 2, 5):
        assert g.first_video_frame(8 * b) == 32 * b - 3
        assert g.switch_block(g.latent_index((32 * b - 3) / 24)) == b
    assert g.latent_frames(381 / 24) == 96 and g.video_frames(96) == 381


def test_presets_name_the_verified_release():
    spec = PRESETS["longlive-2.0-5b"]
    parts = {p.role: str(p.source) for p in components(spec)}
    assert parts["generator"] == "Efficient-Large-Model/LongLive-2.0-5B:model_bf16.pt"
    assert parts["transformer_config"] == "Wan-AI/Wan2.2-TI2V-5B-Diffusers:transformer/config.json"
    assert parts["vae"] == "Wan-AI/Wan2.2-TI2V-5B-Diffusers:vae" and "lora" not in parts
    assert spec.architecture == "longlive-2.0" and spec.geometry == WAN22
    s = spec.sampler
    assert (s.name, s.local_attn_size, s.sink_size, s.sampling_steps, s.timestep_shift) == (
        "longlive2",
        32,
        8,
        4,
        5,
    )
    assert s.multi_shot_sink and not s.shot_clean_recache and s.scene_cut_prefix == "The scene transitions. "
    assert PRESETS["tiny-random-2"].architecture == "longlive-2.0"


@pytest.mark.parametrize("name", ["longlive-2.0-5b-nvfp4-s4", "longlive-2.0-5b-nvfp4-s2"])
def test_nvfp4_releases_are_refused_with_what_they_need(name):
    with pytest.raises(ModelUnavailableError) as err:
        resolve_model(name)
    assert "NVFP4" in str(err.value) and "Blackwell" in str(err.value) and "longlive-2.0-5b" in str(err.value)


def test_spec_file_architecture(tmp_path):
    (tmp_path / "a.yaml").write_text("architecture: longlive-2.0\nbase: x\nmulti_shot_sink: false\n")
    spec = resolve_model(str(tmp_path / "a.yaml"))
    assert spec.geometry == WAN22 and spec.sampler.name == "longlive2" and spec.sampler.sink_size == 8
    assert not spec.sampler.multi_shot_sink
    (tmp_path / "b.yaml").write_text("architecture: longlive-3\nbase: x\n")
    with pytest.raises(ModelUnavailableError, match="longlive-3"):
        resolve_model(str(tmp_path / "b.yaml"))
    (tmp_path / "c.yaml").write_text("architecture: longlive-2.0\nbase: x\nsampler: longlive\n")
    with pytest.raises(ModelUnavailableError, match="does not run"):
        resolve_model(str(tmp_path / "c.yaml"))


# ------------------------------------------------------------------------------------------ solver
def test_unipc_grid_is_the_official_one():
    timesteps, sigmas = flow_unipc_grid(4, 5.0)
    assert timesteps == [999, 937, 833, 624]
    ref_t, ref_s = official_grid(4, 5.0)
    assert timesteps == [int(t) for t in ref_t] and sigmas.tolist() == ref_s
    assert sigmas.tolist()[:4] == pytest.approx([0.99980, 0.93727, 0.83306, 0.62469], abs=1e-5)


def test_unipc_steps_match_the_reference_solver():
    g = torch.Generator().manual_seed(0)
    weight = 0.3 * torch.randn(16, 16, generator=g)
    x0 = torch.randn(1, 8, 16, generator=g)

    def flow(x, t):
        return torch.tanh(x @ weight) * (1 + t / 1000)

    timesteps, sigmas = flow_unipc_grid(4, 5.0)
    solver, x = FlowUniPC(sigmas), x0.clone()
    for t in timesteps:
        x = solver.step(flow(x, t), x)
    ref = unipc_block(lambda y, i: flow(y, timesteps[i]), x0.clone(), official_grid()[1])
    assert (x - ref).abs().max() <= 1e-5 * ref.abs().max()
    # not a plain Euler/x0 chain: dropping the corrector changes the result
    euler = x0.clone()
    for i, t in enumerate(timesteps):
        x0_i = euler - sigmas[i] * flow(euler, t)
        euler = (1 - sigmas[i + 1]) * x0_i + sigmas[i + 1] * (euler - x0_i) / sigmas[i]
    assert (euler - ref).abs().max() > 1e-3


# ------------------------------------------------------------------------------------------ parity
@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A tiny LongLive 2.0 release in the official formats: base folder, merged generator, spec file."""
    root = tmp_path_factory.mktemp("longlive2")
    base = root / "base"
    (base / "transformer").mkdir(parents=True)
    (base / "transformer" / "config.json").write_text(json.dumps(dict(WanTransformer3DModel(**CFG2).config)))
    build_tiny_text_encoder(seed=3).save_pretrained(base)
    torch.manual_seed(4)
    AutoencoderKLWan(**tiny_vae_config_2()).save_pretrained(base / "vae")
    g = torch.Generator().manual_seed(11)
    gen = {k: (0.2 * torch.randn(shape, generator=g)).to(torch.bfloat16) for k, (shape, _) in LAYOUT2.items()}
    torch.save(
        {"generator": {f"model.{k}": v for k, v in gen.items()}, "checkpoint_format": "bf16"}, root / "gen.pt"
    )
    spec = "architecture: longlive-2.0\nbase: base\ngenerator: gen.pt\n"
    (root / "spec.yaml").write_text(spec)
    (root / "spec-no-shot-sink.yaml").write_text(spec + "multi_shot_sink: false\n")
    (root / "spec-clean-recache.yaml").write_text(spec + "shot_clean_recache: true\n")
    return root


@pytest.fixture(scope="module")
def reference(release):
    model = CausalWanTransformer(load_official_transformer(release / "gen.pt", CFG2, LAYOUT2)).requires_grad_(
        False
    )
    text = TextEncoder.from_pretrained(release / "base")
    return model, lambda t: encode_prompts(text, [t])[0]


def run_generate(
    release: Path, story: str, tmp_path: Path, *extra: str, spec: str = "spec.yaml"
) -> torch.Tensor:
    board = tmp_path / "story.yaml"
    board.write_text(story)
    lat = tmp_path / "out.safetensors"
    args = ["generate", str(board), "-o", str(tmp_path / "out.mp4"), "--model", str(release / spec)]
    args += ["--device", "cpu", "--dtype", "float32", "--save-latents", str(lat), "-q", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return read_latents(lat)[0]


def assert_parity(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.shape == want.shape
    err = (got - want).norm() / want.norm()
    assert err <= 1e-4, f"relative error {err:.2e}"


def official(reference, texts: list[str], **options) -> torch.Tensor:
    """The official 2.0 inference (tests/official_v2.py) of ``texts``, one per block, at the test's size and
    seed 5: latents ``[1, F, 48, H, W]``."""
    model, encode = reference
    return official_v2_latents(model, encode, texts, latent_height=H, latent_width=W, seed=5, **options)


def test_one_prompt_over_12_blocks_equals_the_official_inference(release, reference, tmp_path):
    story = f"duration: {381 / 24}\nresolution: {RES}\nseed: 5\n"
    story += "prompts: [{at: 0s, text: a lighthouse at dusk}]\n"
    got = run_generate(release, story, tmp_path)
    want = official(reference, ["a lighthouse at dusk"] * 12)
    assert got.shape == (1, 96, 48, H, W)
    assert_parity(got, want)


def test_tiny_random_2_writes_a_24_fps_video(tmp_path):
    board = tmp_path / "story.yaml"
    board.write_text(f"duration: 2s\nresolution: {RES}\nprompts: [{{at: 0s, text: a red fox}}]\n")
    args = [
        "generate",
        str(board),
        "-o",
        str(tmp_path / "o.mp4"),
        "--model",
        "tiny-random-2",
        "--device",
        "cpu",
        "-q",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    import imageio_ffmpeg

    meta = next(imageio_ffmpeg.read_frames(str(tmp_path / "o.mp4")))
    assert meta["fps"] == 24 and meta["size"] == (64, 32)
    plan = make_plan(
        load_storyboard(board, geometry=PRESETS["tiny-random-2"].geometry), PRESETS["tiny-random-2"].geometry
    )
    assert plan.num_video_frames == 61  # 2 s -> 2 blocks of 8 latent frames -> 4*16 - 3


# ------------------------------------------------------------------------------------------ shots
def block_texts(prompts: list[tuple[int, str, bool]], num_blocks: int) -> list[str]:
    """Per-block texts as the official dataset writes them: a shot's first block behind the prefix."""
    out = []
    for i, (first, text, cut) in enumerate(prompts):
        end = prompts[i + 1][0] if i + 1 < len(prompts) else num_blocks
        out += [PREFIX + text if cut and b == first else text for b in range(first, end)]
    return out


def story(prompts: list[tuple[int, str, bool]], num_blocks: int, seed: int = 5) -> str:
    """A storyboard with each prompt at the start of its block: ``at: (32b - 3)/24 s`` switches at block b."""
    lines = [f"duration: {(32 * num_blocks - 3) / 24}", f"resolution: {RES}", f"seed: {seed}", "prompts:"]
    for first, text, cut in prompts:
        at = 0 if first == 0 else (32 * first - 3) / 24
        lines.append(f"  - {{at: {at}, text: {text}{', cut: true' if cut else ''}}}")
    return "\n".join(lines) + "\n"


SHOTS = {
    # a cut after the window (32 frames, 4 blocks) is full: pinned floating, protected three blocks later
    "cut-after-window-full": ([(0, "a lighthouse at dusk", False), (5, "a ship in a storm", True)], 9),
    # a cut at block 1 (pinned right behind the global sink at once) and a later one that replaces it
    "three-shots": (
        [(0, "a lighthouse at dusk", False), (1, "a ship in a storm", True), (4, "a harbour at night", True)],
        7,
    ),
}


@pytest.mark.parametrize(
    ("scenario", "multi_shot_sink"),
    [("cut-after-window-full", True), ("three-shots", True), ("three-shots", False)],
    ids=["cut-after-window-full", "three-shots", "three-shots-no-shot-sink"],
)
def test_shots_equal_the_official_inference(release, reference, tmp_path, scenario, multi_shot_sink):
    prompts, num_blocks = SHOTS[scenario]
    spec = "spec.yaml" if multi_shot_sink else "spec-no-shot-sink.yaml"
    got = run_generate(release, story(prompts, num_blocks), tmp_path, spec=spec)
    want = official(reference, block_texts(prompts, num_blocks), multi_shot_sink=multi_shot_sink)
    assert_parity(got, want)
    # the shot structure matters: without the cut the latents differ from the shot's first block on
    plain = official(
        reference,
        [t.removeprefix(PREFIX) for t in block_texts(prompts, num_blocks)],
        multi_shot_sink=multi_shot_sink,
    )
    first_cut = 8 * next(b for b, _, cut in prompts if cut)
    assert torch.equal(want[:, :first_cut], plain[:, :first_cut])
    assert (want[:, first_cut:] - plain[:, first_cut:]).abs().max() > 1e-3


def test_shot_clean_recache_equals_the_official_inference(release, reference, tmp_path):
    prompts, num_blocks = SHOTS["cut-after-window-full"][0], 7
    got = run_generate(release, story(prompts, num_blocks), tmp_path, spec="spec-clean-recache.yaml")
    want = official(reference, block_texts(prompts, num_blocks), shot_clean_recache=True)
    assert_parity(got, want)
    default = official(reference, block_texts(prompts, num_blocks))
    assert torch.equal(want[:, :48], default[:, :48])  # the reset comes after the cut block's denoising
    assert (want[:, 48:] - default[:, 48:]).abs().max() > 1e-3


def test_cut_on_a_model_without_shots_is_an_input_error(tmp_path):
    board = tmp_path / "story.yaml"
    board.write_text("duration: 3s\nprompts: [{at: 0s, text: a}, {at: 1.5s, text: b, cut: true}]\n")
    result = CliRunner().invoke(app, ["generate", str(board), "--model", "tiny-random", "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "tiny-random-2" in result.output and "longlive-2.0-5b" in result.output


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{at: 0s, text: a, cut: true}", "first shot already"),
        ("{at: 0s, text: a}, {at: 1.5s, text: b, cut: yes please}", "not true or false"),
        ("{at: 0s, text: a}, {at: 1.5s, text: b, cut: true, transition: 1s}", "one plain text"),
    ],
)
def test_bad_cuts_are_storyboard_errors(tmp_path, entry, message):
    board = tmp_path / "story.yaml"
    board.write_text(f"duration: 3s\nprompts: [{entry}]\n")
    result = CliRunner().invoke(app, ["validate", str(board), "--model", "tiny-random-2"])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


# ------------------------------------------------------------------------------------------ in-shot switch
@pytest.fixture(scope="module")
def tiny_model():
    from longlive_cli.models.wan22 import build_tiny_random_2

    wan, _ = build_tiny_random_2(seed=2)
    return CausalWanTransformer(wan.eval()).requires_grad_(False)


def _embeds(n: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(9)
    return [torch.randn(1, 6, CFG2["text_dim"], generator=g) for _ in range(n)]


def _sample(model, segment_of_block, embeds, cut_embeds=None, cfg=None) -> torch.Tensor:
    from longlive_cli.samplers.longlive2 import LONGLIVE2, sample_longlive2
    from longlive_cli.schedule import FixedSchedule

    schedule = FixedSchedule(embeds, segment_of_block, cut_embeds=cut_embeds)
    blocks = sample_longlive2(
        model, schedule, latent_height=H, latent_width=W, seed=3, sampler_config=cfg or LONGLIVE2
    )
    return torch.cat([b.latents for b in blocks], dim=1)


@pytest.mark.parametrize("switch", [2, 6], ids=["window-filling", "window-full"])
def test_in_shot_switch_keeps_the_past_and_recaches(tiny_model, switch, monkeypatch):
    embeds = _embeds(2)
    one = _sample(tiny_model, [0] * 8, embeds)
    passes = []
    real = type(tiny_model).forward

    def spy(self, latents, timesteps, *args, **kwargs):
        passes.append((kwargs["start_frame"], latents.shape[1], float(timesteps.flatten()[0])))
        return real(self, latents, timesteps, *args, **kwargs)

    monkeypatch.setattr(type(tiny_model), "forward", spy)
    two = _sample(tiny_model, [0] * switch + [1] * (8 - switch), embeds)
    start = 8 * switch
    assert torch.equal(one[:, :start], two[:, :start])
    assert (one[:, start:] - two[:, start:]).abs().max() > 1e-3
    # one re-cache pass at t = 0 just before the switch block, over the shot's cached frames beside the sink
    first = max(8, start - 24)  # the sink (frames 0-7) keeps its keys
    assert len(passes) == 5 * 8 + 1
    switch_pass = passes.index((start, 8, 999.0))
    assert passes[switch_pass - 1] == (first, start - first, 0.0)


def test_in_shot_switch_after_a_cut_keeps_the_shot_sink(tiny_model):
    """Cut at block 2, switch inside that shot at block 4: the pinned cut block is not re-encoded."""
    embeds = _embeds(3)
    cut = {1: torch.randn(1, 7, CFG2["text_dim"], generator=torch.Generator().manual_seed(1))}
    base = _sample(tiny_model, [0, 0, 1, 1, 1, 1, 1], embeds[:2], cut)
    switched = _sample(tiny_model, [0, 0, 1, 1, 2, 2, 2], embeds, cut)
    assert torch.equal(base[:, :32], switched[:, :32])
    assert (base[:, 32:] - switched[:, 32:]).abs().max() > 1e-3


# ------------------------------------------------------------------------------------------ AR base + LoRA
def test_ar_base_with_separate_lora_equals_the_merged_official_weights(release, tmp_path):
    """The two-file layout (``generator_ckpt`` + ``lora_ckpt``, rank 128 / alpha 128 on every Linear of the
    attention blocks): generate equals the official inference on ``W + (alpha / rank) * B @ A``."""
    rank = alpha = 128
    g = torch.Generator().manual_seed(21)
    base = {k: 0.2 * torch.randn(shape, generator=g) for k, (shape, _) in LAYOUT2.items()}
    modules = [f"blocks.{i}.{n}" for i in range(CFG2["num_layers"]) for n in LINEARS]
    lora = {}
    for m in modules:
        out_f, in_f = LAYOUT2[f"{m}.weight"][0]
        lora[m] = (0.05 * torch.randn(rank, in_f, generator=g), 0.05 * torch.randn(out_f, rank, generator=g))
    torch.save({"generator": {f"model.{k}": v for k, v in base.items()}}, tmp_path / "ar_base.pt")
    torch.save({"generator_lora": peft_format(lora)}, tmp_path / "lora.pt")
    spec = f"architecture: longlive-2.0\nbase: {release / 'base'}\ngenerator: ar_base.pt\nlora: lora.pt\n"
    (tmp_path / "spec.yaml").write_text(spec + f"lora_rank: {rank}\nlora_alpha: {alpha}\n")
    prompts = [(0, "a lighthouse at dusk", False), (2, "a ship in a storm", True)]
    got = run_generate(tmp_path, story(prompts, 4), tmp_path, spec="spec.yaml")
    merged = dict(base)
    for m, (a, b) in lora.items():
        merged[f"{m}.weight"] = merged[f"{m}.weight"] + (alpha / rank) * (b @ a)
    torch.save({"generator": {f"model.{k}": v for k, v in merged.items()}}, tmp_path / "merged.pt")
    model = CausalWanTransformer(load_official_transformer(tmp_path / "merged.pt", CFG2, LAYOUT2))
    text = TextEncoder.from_pretrained(release / "base")
    want = official_v2_latents(
        model.requires_grad_(False),
        lambda t: encode_prompts(text, [t])[0],
        block_texts(prompts, 4),
        latent_height=H,
        latent_width=W,
        seed=5,
    )
    assert_parity(got, want)


# ------------------------------------------------------------------------------------------ decoding
def test_streaming_decode_of_wan22_latents_equals_one_shot_decode():
    from longlive_cli.decoders.wan import StreamingDecoder, to_uint8_frames

    torch.manual_seed(4)
    vae = AutoencoderKLWan(**tiny_vae_config_2()).eval()
    latents = torch.randn(1, 16, 48, H, W, generator=torch.Generator().manual_seed(0))
    decoder = StreamingDecoder(vae)
    streamed = torch.cat([decoder.decode(latents[:, i : i + 8]) for i in (0, 8)], dim=1)
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    with torch.no_grad():
        whole = vae.decode(latents.permute(0, 2, 1, 3, 4) / inv_std + mean).sample
    assert streamed.shape == (1, 61, 32, 64, 3)
    assert torch.equal(streamed, to_uint8_frames(whole))


# ------------------------------------------------------------------------------------------ image-to-video
def _png(path: Path, width: int = 90, height: int = 50, seed: int = 0) -> Path:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _official_pixels(path: Path, width: int, height: int) -> torch.Tensor:
    """``ImagePromptDataset._load_image`` written here: RGB uint8 / 255, Resize((H, W), antialias) as
    torchvision does on tensors (a stretch when the aspect ratio differs), Normalize(0.5, 0.5), float16;
    ``[3, H, W]`` float32."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        array = np.array(img.convert("RGB"))
    x = torch.from_numpy(array).permute(2, 0, 1).contiguous().float() / 255.0
    if x.shape[1:] != (height, width):
        x = torch.nn.functional.interpolate(x[None], size=(height, width), mode="bilinear", antialias=True)[0]
    return ((x - 0.5) / 0.5).to(torch.float16).float()


def _official_image_latent(path: Path, base: Path, width: int, height: int) -> torch.Tensor:
    """The official I2V conditioning (``ImagePromptDataset._load_image`` + ``encode_to_latent``), written
    here:
    RGB uint8 / 255, Resize((H, W), antialias) as torchvision does on tensors, Normalize(0.5, 0.5), float16,
    then the VAE's mean normalized by the 48 per-channel constants."""
    x = _official_pixels(path, width, height)
    vae = AutoencoderKLWan.from_pretrained(str(base / "vae")).eval()
    with torch.no_grad():
        mu = vae.encode(x[None, :, None]).latent_dist.mode()
    scale = [torch.tensor(vae.config.latents_mean), 1.0 / torch.tensor(vae.config.latents_std)]
    mu = (mu - scale[0].view(1, -1, 1, 1, 1)) * scale[1].view(1, -1, 1, 1, 1)
    return mu.permute(0, 2, 1, 3, 4)


def test_image_to_video_with_two_shots_equals_the_official_inference(release, reference, tmp_path):
    photo = _png(tmp_path / "photo.png", width=96, height=48)  # the video's aspect: resized, not cropped
    prompts, num_blocks = [(0, "a lighthouse at dusk", False), (2, "a ship in a storm", True)], 4
    board = story(prompts, num_blocks).replace("prompts:", "image: photo.png\nprompts:")
    got = run_generate(release, board, tmp_path)
    image = _official_image_latent(photo, release / "base", 64, 32)
    want = official(reference, block_texts(prompts, num_blocks), image_latent=image)
    assert_parity(got, want)
    assert torch.allclose(got[:, :1], image, rtol=0, atol=1e-6)  # frame 0 is the image's latent
    t2v = official(reference, block_texts(prompts, num_blocks))
    assert (want[:, 1:8] - t2v[:, 1:8]).abs().max() > 1e-3
    # --image overrides image: (here: a different picture gives a different video)
    other = _png(tmp_path / "other.png", width=96, height=48, seed=1)
    again = run_generate(release, board, tmp_path, "--image", str(other), "--force")
    assert (again[:, :1] - got[:, :1]).abs().max() > 1e-3


@pytest.mark.parametrize(
    ("size", "box"),
    [((128, 40), (24, 0, 80, 40)), ((60, 51), (0, 10, 60, 30))],
    ids=["wider", "taller"],
)
def test_image_of_another_aspect_is_centre_cropped_then_resized_by_the_official_rule(tmp_path, size, box):
    """64x32 video: a 128x40 image keeps its centre 80x40, a 60x51 one its centre 60x30 (offset 10.5 rounded
    down), each then resized as the official loader resizes; the official stretch of the whole image
    differs."""
    from PIL import Image

    from longlive_cli.images import centre_crop_box, load_image

    photo = _png(tmp_path / "photo.png", *size)
    assert centre_crop_box(*size, 64, 32) == box
    left, top, w, h = box
    with Image.open(photo) as img:
        img.crop((left, top, left + w, top + h)).save(tmp_path / "centre.png")
    got = load_image(photo, 64, 32)[0, :, 0]
    assert torch.equal(got, _official_pixels(tmp_path / "centre.png", 64, 32))
    assert (got - _official_pixels(photo, 64, 32)).abs().max() > 0.1  # not stretched
    assert centre_crop_box(96, 48, 64, 32) == (0, 0, 96, 48) and centre_crop_box(65, 32, 64, 32)[2] == 64


def _run_image(tmp_path: Path, image_line: str, *extra: str, model: str = "tiny-random-2"):
    board = tmp_path / "story.yaml"
    board.write_text(f"duration: 2s\nresolution: {RES}\n{image_line}prompts: [{{at: 0s, text: a red fox}}]\n")
    args = [
        "generate",
        str(board),
        "-o",
        str(tmp_path / "o.mp4"),
        "--model",
        model,
        "--device",
        "cpu",
        *extra,
    ]
    return CliRunner().invoke(app, args)


def _hostile_images(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (image: line, expected message part)."""
    (tmp_path / "text.png").write_text("not an image at all")
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "anim.gif.png", format="GIF")
    good = _png(tmp_path / "good.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "folder.png").mkdir()
    return {
        "missing": ("image: nowhere.png\n", "cannot read it"),
        "not-an-image": ("image: text.png\n", "not a readable PNG or JPEG"),
        "gif": ("image: anim.gif.png\n", "GIF format"),
        "truncated": ("image: cut.png\n", "not a readable PNG or JPEG"),
        "folder": ("image: folder.png\n", "not a file"),
        "suffix": ("image: photo.bmp\n", "not a .png, .jpg or .jpeg"),
        "number": ("image: 42\n", "is not a file path"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "not-an-image", "gif", "truncated", "folder", "suffix", "number"]
)
def test_hostile_images_are_input_errors(tmp_path, case):
    line, message = _hostile_images(tmp_path)[case]
    result = _run_image(tmp_path, line)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.mp4").exists() and not list(tmp_path.glob("*.tmp*"))


def test_image_over_the_pixel_limit_is_an_input_error(tmp_path, monkeypatch):
    from longlive_cli import images

    _png(tmp_path / "big.png", width=64, height=64)
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 64 * 63)
    result = _run_image(tmp_path, "image: big.png\n")
    assert result.exit_code == 2 and "64x64 pixels" in result.output, result.output


def test_image_on_a_model_without_image_input_is_an_input_error(tmp_path):
    _png(tmp_path / "good.png")
    result = _run_image(tmp_path, "image: good.png\n", model="tiny-random")
    assert result.exit_code == 2, result.output
    assert "takes no image" in result.output and "tiny-random-2" in result.output


def test_examples_plan_their_shots_and_image():
    from longlive_cli.images import load_image

    geometry = PRESETS["tiny-random-2"].geometry
    root = Path(__file__).parent.parent / "examples"
    multishot = make_plan(load_storyboard(root / "longlive2_multishot.yaml", geometry=geometry), geometry)
    assert [(s.start_block, s.cut) for s in multishot.segments] == [
        (0, False),
        (3, True),
        (6, False),
        (9, True),
    ]
    assert multishot.fps == 24 and multishot.num_blocks == 12
    i2v = make_plan(load_storyboard(root / "longlive2_i2v.yaml", geometry=geometry), geometry)
    assert i2v.image is not None and Path(i2v.image).resolve() == (root / "lighthouse.png").resolve()
    assert load_image(i2v.image, i2v.width, i2v.height).shape == (1, 3, 1, i2v.height, i2v.width)


# ------------------------------------------------------------------------------------------ memory
def test_memory_estimate_knows_the_5b():
    """About 10 GB of bf16 weights and a 32-frame KV cache of about 9.7 GiB at 1280x704 (880 tokens per latent
    frame at 16x); one cache, not the official unused negative one beside it."""
    from diffusers import WanTransformer3DModel as Wan

    from longlive_cli.memory import MemoryInputs, TransformerArch, estimate_memory
    from longlive_cli.models.wan22 import wan22_5b_transformer_config
    from longlive_cli.precision import choose_dtypes

    config = wan22_5b_transformer_config()
    arch = TransformerArch.from_config(config)
    with torch.device("meta"):
        assert arch.params == sum(p.numel() for p in Wan(**config).parameters())
    inputs = MemoryInputs(
        model="longlive-2.0-5b",
        device="cuda",
        dtypes=choose_dtypes("cuda", text_stored="bf16"),
        transformer=arch,
        width=1280,
        height=704,
        local_attn_size=32,
        spatial_stride=16,
    )
    assert inputs.tokens_per_frame == 880
    gen = {w.split(" (")[0]: b for w, b in estimate_memory(inputs).phases[-1].gpu}
    assert gen["KV cache"] == 2 * 30 * 32 * 880 * 3072 * 2 and round(gen["KV cache"] / 2**30, 1) == 9.7
    assert 9.5e9 < gen["transformer weights"] < 10.5e9


@pytest.mark.parametrize("decoder", ["taehv", "lightvae"])
def test_wan21_fast_decoders_are_refused_for_wan22_latents(tmp_path, decoder):
    _png(tmp_path / "unused.png")
    result = _run_image(tmp_path, "", "--decoder", decoder)
    assert result.exit_code == 2 and "48 channels" in result.output, result.output
