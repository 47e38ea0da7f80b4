"""--train-parts and --captions-per-step: which weights train, and how a step's 1,024 captions are reached."""
import pytest

from caprl_train.config import GRPOSettings
from caprl_train.parts import freeze_parts, part_of
from caprl_train.train import accumulation_steps


@pytest.mark.parametrize("fixture", ["tiny_llava_dir", "tiny_qwen_vl_dir"])
def test_each_family_splits_into_three_parts_and_freezes_the_rest(fixture, request):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(request.getfixturevalue(fixture))
    trainable = freeze_parts(model, ["language", "projector"])
    assert trainable["language"] > 0 and trainable["projector"] > 0 and "vision" not in trainable
    for name, param in model.named_parameters():
        assert param.requires_grad == (part_of(name) != "vision"), name
    assert any(part_of(n) == "vision" for n, _ in model.named_parameters())


def test_a_model_without_a_vision_encoder_or_an_unknown_part_is_an_error(tiny_lm_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    with pytest.raises(ValueError, match="cannot find the vision or projector parameters of LlamaForCausalLM"):
        freeze_parts(model, ["language"])
    with pytest.raises(ValueError, match=r"--train-parts decoder: choose from vision, projector, language"):
        freeze_parts(model, ["decoder"])
    assert all(p.requires_grad for p in model.parameters())


def test_captions_per_step_sets_the_accumulation_for_the_gpus_there_are():
    recipe = GRPOSettings()
    assert recipe.captions_per_step == 1024 and recipe.per_device_train_batch_size == 8
    assert accumulation_steps(recipe, 1) == 128 and accumulation_steps(recipe, 8) == 16
    assert accumulation_steps(GRPOSettings(gradient_accumulation_steps=3), 8) == 3  # given outright, kept
    with pytest.raises(ValueError, match="--captions-per-step 1024: not a multiple of .* 8 x 3 process"):
        accumulation_steps(recipe, 3)
