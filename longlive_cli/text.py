"""Text stage: a storyboard's prompts -> one UMT5 embedding per prompt, each unique prompt encoded once.

The encoder and Wan's prompt rules (cleaning, 512 tokens, zero rows past the tokens) are
:class:`~longlive_cli.models.umt5.TextEncoder`; this stage decides what is encoded and what is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .models.umt5 import TextEncoder, as_prompt_list

__all__ = ["encode_prompts"]


def encode_prompts(
    encoder: TextEncoder,
    prompts: Sequence[str],
    *,
    on_truncate: Callable[[int, str, int], None] | None = None,
) -> list[torch.Tensor]:
    """Encode each unique prompt once; return one ``[1, n, d_model]`` tensor per input prompt.

    ``n`` is the prompt's token count after truncation (``</s>`` included, at most ``max_length``): the
    rows after it are exactly zero in :meth:`TextEncoder.encode`'s output (Wan's padding rule) and are
    not kept, so a storyboard's prompts hold memory in proportion to their tokens, not 512 rows each;
    :meth:`CausalWanTransformer.encode_prompt` pads them back with zeros. Duplicates are found by exact
    string equality (order of first appearance kept) and map to the same tensor object. Each unique
    prompt gets its own forward pass (batch of 1), so its embedding does not depend on which other
    prompts share the storyboard. ``on_truncate(index, prompt, token_count)`` is called, before
    encoding, for every input index whose prompt has more than ``encoder.max_length`` tokens (count incl.
    ``</s>``, before truncation). Raises ``TypeError`` for a bare ``str``.
    """
    prompts = as_prompt_list(prompts)
    unique = list(dict.fromkeys(prompts))
    if not unique:
        return []
    counts = dict(zip(unique, encoder.token_counts(unique), strict=True))
    if on_truncate is not None:
        for index, prompt in enumerate(prompts):
            if counts[prompt] > encoder.max_length:
                on_truncate(index, prompt, counts[prompt])
    # clone(): a slice would keep the whole padded tensor alive.
    embeds = {p: encoder.encode([p])[:, : min(counts[p], encoder.max_length)].clone() for p in unique}
    return [embeds[p] for p in prompts]
