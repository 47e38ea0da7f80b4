"""Every `caprl-train train` setting, as dataclasses whose fields carry their help text and choices.

The command line is generated from these fields (caprl_train.cli), as trl does
with its configs, so a flag, its help and its allowed values cannot drift from
the setting they set. Choices come from prism_eval's core constants.

Defaults follow CapRL-3B's released training recipe where it states a value
(lr 1e-6, group 8, temperature 1.0, no KL, 4096 caption tokens, 20 warm-up
steps, 1,024 captions per step, per-caption loss averaging, every part of the
policy trained, images at the processor's own pixel cap, about 3 epochs) and
the paper where the script is silent or contradicts it (group mean/std
advantages: the paper says GRPO, the script says RLOO). The README has the
full mapping.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from prism_eval.core.protocols import CAPRL_CAPTION_PROMPT, ESTIMATORS, OPTION_NORMS, PROTOCOLS, SCORING_MODES
from prism_eval.core.utility import UtilityConfig

DEFAULT_POLICY = "Qwen/Qwen2.5-VL-3B-Instruct"
LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
DTYPES = ("auto", "float32", "bfloat16", "float16")
TRAIN_PARTS = ("vision", "projector", "language")


def setting(default: Any = None, help: str = "", choices: tuple[str, ...] | None = None, *,
            factory: Any = None) -> Any:
    """A dataclass field with its command-line help and allowed values in the metadata."""
    meta = {"help": help, **({"choices": tuple(choices)} if choices else {})}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    """Where the QA data is and how its images reach the policy.

    `image_size` resizes every image to one fixed square (a multiple of 28 for
    Qwen2.5-VL): trl's vLLM colocate rollouts break on mixed image sizes (trl
    #6401). `max_image_side` only caps the long side, keeping the aspect ratio.
    """

    source: str = setting("", "QA data: a hub id (internlm/CapRL-QA-75K layout), a parquet/dataset folder, or a "
                              "local JSONL (training layout, or the evaluator's one-question-a-line layout)")
    split: str = setting("train", "dataset split")
    image_root: str | None = setting(None, "resolve relative image paths here")
    limit: int | None = setting(None, "use only the first N images")
    prompt: str = setting(CAPRL_CAPTION_PROMPT, "the captioning instruction")
    image_size: int | None = setting(None, "resize every image to this square (a multiple of 28 for Qwen2.5-VL; "
                                           "advised with vLLM rollouts)")
    max_image_side: int | None = setting(None, "downscale images whose long side exceeds this (unset: the "
                                               "processor's own pixel cap decides, as in CapRL's recipe)")
    min_questions: int = setting(1, "skip images with fewer questions")


@dataclass
class RewardConfig:
    """Reward settings; defaults follow CapRL's reward server (qa_num=8, shuffle on, 'cannot answer' added).

    `questions_per_caption=None` asks every question once (the server's --all_qa).
    The default judge is CapRL's, Qwen2.5-3B-Instruct, read as letter log-probabilities with the expected
    estimator: the noise-free expectation of CapRL's one sampled letter (a test checks the two agree).
    `compat="caprl"` is CapRL's reward exactly: one answer sampled at T=0.6 (10 tokens), the first capital
    A-I in it, questions drawn and options shuffled anew for every caption, the appended option labelled F;
    `caprl_launcher` picks the released launcher (no shuffle, nothing appended) or the paper's (both).
    The length term is CapRL++'s: full reward up to l1 caption tokens, linear to 0 at l2, weight beta.
    """

    judge: str = setting("Qwen/Qwen2.5-3B-Instruct", "judge spec (CapRL's: Qwen/Qwen2.5-3B-Instruct); "
                                                     "builtin:smollm2-135m runs anywhere, offline")
    protocol: str = setting("caprl", "the judge protocol", tuple(PROTOCOLS))
    scoring: str | None = setting(None, "how the judge answers (unset: letter-logprob, or option-loglik for a "
                                        "built-in judge, which is at chance when asked for letters)", SCORING_MODES)
    option_norm: str = setting("mean", "option-loglik only: per-token mean, sum, or pmi", OPTION_NORMS)
    estimator: str = setting("expected", "argmax / expected (probability of the gold letter) / sampled (one "
                                         "sampled answer per ask)", ESTIMATORS)
    questions_per_caption: int | None = setting(8, "questions drawn (with replacement) per caption; 0 asks every "
                                                   "question once")
    shuffle: bool = setting(True, "shuffle the options on every ask")
    cannot_answer: bool = setting(True, "append 'Can not answer based on the caption'")
    label_quirk: bool = setting(False, "label the appended option F, as CapRL's released server did")
    compat: str | None = setting(None, "caprl: CapRL's reward exactly (sampled letter, first A-I, draws and "
                                       "shuffles per caption)", ("caprl",))
    caprl_launcher: str = setting("paper", "with --compat caprl: the released launcher (no shuffle, no appended "
                                           "option) or the paper's (both)", ("released", "paper"))
    temperature: float | None = setting(None, "judge temperature for the expected and sampled estimators "
                                              "(unset: the protocol's)")
    seed: int = setting(0, "seed of question draws, shuffles and sampled answers")
    length_l1: int = setting(2048, "length term: full reward up to this many caption tokens")
    length_l2: int = setting(3072, "length term: no reward from this many caption tokens")
    length_beta: float = setting(0.0, "weight of CapRL++'s length term (0: off)")
    max_completion_length: int | None = setting(None, "set from the GRPO settings (truncation statistics)")
    judge_batch: int = setting(256, "judge requests per call")
    # a completion that reaches the cap without one of these was truncated (set from the policy's tokenizer)
    eos_token_ids: tuple[int, ...] = setting((), "set from the policy")

    def resolved(self) -> "RewardConfig":
        """The settings in force: under compat caprl, CapRL's reward procedure replaces the scoring choices."""
        if self.compat != "caprl":
            if self.scoring:
                return self
            return replace(self, scoring=PROTOCOLS.get(self.protocol).scoring_for(self.judge))
        paper = self.caprl_launcher == "paper"
        return replace(self, scoring="generate", estimator="sampled", shuffle=paper, cannot_answer=paper,
                       label_quirk=True)

    def protocol_overrides(self) -> dict[str, Any]:
        settings = self.resolved()
        overrides: dict[str, Any] = {"shuffle": settings.shuffle, "cannot_answer": settings.cannot_answer,
                                     "label_quirk": settings.label_quirk}
        if self.compat == "caprl":
            overrides["parser"] = "first-letter"  # CapRL's parse_easy: the first capital A-I anywhere
        return overrides

    def utility_config(self, step: int = 0) -> UtilityConfig:
        settings = self.resolved()
        return UtilityConfig(scoring=settings.scoring, estimator=settings.estimator,
                             draws=settings.questions_per_caption, option_norm=settings.option_norm,
                             seed=settings.seed + step, temperature=settings.temperature,
                             batch_size=settings.judge_batch, independent_draws=self.compat == "caprl")


@dataclass
class GRPOSettings:
    """The GRPO knobs (names as in trl's GRPOConfig). Batch sizes count completions, not images."""

    num_generations: int = setting(8, "group size G: captions sampled per image")
    temperature: float = setting(1.0, "rollout temperature")
    top_p: float = setting(1.0, "rollout top-p")
    max_completion_length: int = setting(4096, "maximum caption tokens")
    learning_rate: float = setting(1e-6, "learning rate")
    beta: float = setting(0.0, "KL coefficient (0: no reference model)")
    loss_type: str = setting("grpo", "trl loss aggregation (grpo: each caption's token mean, then the mean over "
                                     "captions, as CapRL's recipe averages per sequence)", LOSS_TYPES)
    scale_rewards: str = setting("group", "advantage scaling: group std, batch std, or none (RLOO-like)",
                                 ("group", "batch", "none"))
    epsilon: float = setting(0.2, "clip range")
    epsilon_high: float | None = setting(None, "upper clip range (unset: epsilon)")
    num_iterations: int = setting(1, "policy updates per generation")
    per_device_train_batch_size: int = setting(8, "completions (not images) per device per micro-step")
    captions_per_step: int | None = setting(1024, "completions per optimizer step over all GPUs (CapRL: 128 "
                                                  "images x 8); sets the gradient accumulation")
    gradient_accumulation_steps: int | None = setting(None, "micro-steps per optimizer step (unset: from "
                                                            "--captions-per-step)")
    steps_per_generation: int | None = setting(None, "optimizer steps per generation batch")
    num_train_epochs: float = setting(3.0, "epochs over the QA data (CapRL-3B's released checkpoint: step 1800 "
                                           "of 128 images, about 3 epochs of CapRL-QA-75K)")
    max_steps: int = setting(-1, "stop after this many steps (-1: the epochs decide)")
    warmup_steps: int = setting(20, "linear warm-up steps")
    lr_scheduler_type: str = setting("linear", "learning-rate schedule")
    weight_decay: float = setting(0.0, "weight decay")
    max_grad_norm: float = setting(1.0, "gradient clipping")
    mask_truncated_completions: bool = setting(False, "leave truncated captions out of the loss")
    gradient_checkpointing: bool = setting(True, "trade compute for memory")
    bf16: bool | None = setting(None, "bf16 training (unset: on when the GPU supports it)")
    seed: int = setting(0, "training seed")
    logging_steps: int = setting(1, "log every N steps")
    save_steps: int = setting(50, "checkpoint every N steps (0: only the final policy)")
    save_total_limit: int | None = setting(None, "checkpoints kept")
    report_to: str = setting("none", "trackers (comma-separated: wandb, tensorboard, ...)")
    log_completions: bool = setting(False, "log completions to the tracker")
    use_vllm: bool = setting(False, "generate rollouts with vLLM")
    vllm_mode: str = setting("colocate", "vLLM beside training or as a server", ("colocate", "server"))
    vllm_server_base_url: str | None = setting(None, "vLLM server for --vllm-mode server")
    vllm_gpu_memory_utilization: float = setting(0.3, "vLLM's share of GPU memory (colocate)")
    vllm_tensor_parallel_size: int = setting(1, "vLLM tensor parallelism")
    vllm_enable_sleep_mode: bool = setting(False, "free vLLM's memory between generations")
    extra: dict[str, Any] = setting(help="KEY=VALUE for any other trl GRPOConfig field (repeatable; VALUE parsed "
                                         "as JSON when it can be)", factory=dict)


@dataclass
class LoraSettings:
    """LoRA through peft; the final checkpoint is merged so `hf:<dir>` loads a plain model."""

    enabled: bool = setting(False, "train LoRA adapters instead of the full model")
    r: int = setting(16, "LoRA rank")
    alpha: int = setting(32, "LoRA alpha")
    dropout: float = setting(0.05, "LoRA dropout")
    target_modules: tuple[str, ...] = setting(("q_proj", "k_proj", "v_proj", "o_proj"), "modules to adapt")
    merge_on_save: bool = setting(True, "merge the adapters into the saved final policy")


@dataclass
class EvalSettings:
    """What to evaluate during training, and how often (steps=0 turns it off)."""

    benchmarks: tuple[str, ...] = setting((), "benchmark name or JSONL path to evaluate during training")
    steps: int = setting(0, "evaluate every this many steps (0: off)")
    limit: int | None = setting(64, "questions per benchmark")
    judge: str | None = setting(None, "judge for evaluation; unset: the reward's judge, shared in-process")
    protocol: str = setting("caprl", "evaluation protocol", tuple(PROTOCOLS))
    scoring: str | None = setting(None, "scoring mode (unset: the protocol's)", SCORING_MODES)
    estimator: str | None = setting(None, "estimator (unset: the protocol's)", ESTIMATORS)
    num_captions: int = setting(1, "captions per image")
    temperature: float | None = setting(None, "caption temperature for evaluation; unset: the protocol's")
    max_new_tokens: int | None = setting(None, "caption tokens for evaluation; unset: --max-completion-length")
    at_start: bool = setting(True, "also evaluate before the first step")
    batch_size: int = setting(8, "images per captioning call")
    seed: int = setting(0, "evaluation seed")


@dataclass
class TrainConfig:
    model: str = setting(DEFAULT_POLICY, "policy: any image-text-to-text model (hub id or folder)")
    output_dir: str = setting("runs/caprl", "checkpoints and the final policy")
    dtype: str = setting("auto", "policy weights dtype (auto: float32 for full fine-tuning, whose matrix products "
                                 "still run in bf16 by autocast on a GPU; with --lora the frozen base in bf16 on a "
                                 "GPU)", DTYPES)
    trust_remote_code: bool = setting(False, "allow the policy's repository to run its own code")
    train_parts: tuple[str, ...] = setting(TRAIN_PARTS, "which parts of the policy train: vision (encoder), projector, "
                                                        "language (model); the rest is frozen (CapRL trains all)")
    attn_implementation: str | None = setting(None, "e.g. flash_attention_2, sdpa")
    resume_from_checkpoint: str | None = setting(None, "a checkpoint-N folder to resume from")
    data: DataConfig = setting(factory=DataConfig)
    grpo: GRPOSettings = setting(factory=GRPOSettings)
    reward: RewardConfig = setting(factory=RewardConfig)
    lora: LoraSettings = setting(factory=LoraSettings)
    eval: EvalSettings = setting(factory=EvalSettings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["DataConfig", "RewardConfig", "GRPOSettings", "LoraSettings", "EvalSettings", "TrainConfig",
           "DEFAULT_POLICY", "TRAIN_PARTS", "setting"]
