"""reports/bench/gpu-<device>.{json,md}: the GPU bench's result and its Markdown rendering."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def report_stem(result: dict[str, Any]) -> str:
    stem = f"gpu-{result['device']['slug']}"
    return stem if result["scale"] == "full" else f"{stem}-{result['scale']}"


def write_report(result: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jpath, mpath = out / f"{report_stem(result)}.json", out / f"{report_stem(result)}.md"
    jpath.write_text(json.dumps(result, indent=2) + "\n")
    mpath.write_text(to_markdown(result))
    return jpath, mpath


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


def _num(x: Any, fmt: str = ".3g") -> str:
    return "" if x is None else format(x, fmt)


def _count(n: int) -> str:
    return f"{n / 1e9:.3f} B" if n >= 1e9 else f"{n / 1e6:.2f} M"


def _mem_label(result: dict[str, Any]) -> str:
    return "peak GPU memory (MiB)" if result.get("memory_kind") == "cuda_allocated" else "peak RSS (MiB)"


def _header(result: dict[str, Any]) -> list[str]:
    d, c = result["device"], result.get("ceilings", {})
    lines = [f"# GPU bench: random-weight Qwen2.5-3B judge and Qwen2.5-VL-3B captioner on {d['name']}", "",
             f"Scale: {result['scale']} (the published configs{'' if result['scale'] == 'full' else ', shrunk'}); "
             f"weights {result['dtype']}, random (throughput and memory do not depend on trained weights). "
             f"torch {d['torch']}, CUDA {d['cuda']}, transformers {d['transformers']}, trl {d['trl']}."
             + (f" Device memory {d['memory_gib']} GiB, compute capability {d['capability']}."
                if d.get("memory_gib") else ""),
             f"Tokens: {result['tokenizer']}."]
    if c:
        mm, cp = c["matmul"], c["copy"]
        sheet = (f"; the datasheet's dense bf16 peak is {d['datasheet_bf16_tflops']} TFLOP/s"
                 if d.get("datasheet_bf16_tflops") else "")
        lines.append(f"Ceilings measured in this run: a {mm['n']}^3 {mm['dtype']} matrix product at "
                     f"{mm['tflops']:.3g} TFLOP/s{sheet}; a device copy at {cp['tb_s']:.3g} TB/s (read + write)"
                     + (f", datasheet {d['datasheet_hbm_tb_s']} TB/s." if d.get("datasheet_hbm_tb_s") else "."))
    if result.get("models"):
        lines += ["", "| model | parameters | layer parameters | vision | weights (GiB) | layers | attention | "
                      "built in (s) |", "|---|---:|---:|---:|---:|---:|---|---:|"]
        for role, m in result["models"].items():
            lines.append(f"| {role}: {m['name']} | {_count(m['params'])} | {_count(m['layer_params'])} | "
                         f"{_count(m['vision_params'])} | {m['weight_gib']} | {m['layers']} | "
                         f"{m['attn_implementation']} | {m['build_seconds']} |")
    return lines


def _judge(result: dict[str, Any], j: dict[str, Any]) -> list[str]:
    wl = j["workload"]
    lines = ["", "## Judge", "",
             f"`bench judge`'s workload: {wl['questions']} questions on {wl['captions']} captions "
             f"(mean caption {wl['mean_caption_tokens']} tokens, mean prompt {wl['mean_prompt_tokens']} tokens), "
             f"modes interleaved over {wl['rounds']} round(s); batch {j['settings']['batch_size']} rows, "
             f"{j['settings']['token_budget']} new tokens per scoring pass; attention "
             f"{j['settings']['attn_implementation']}, {j['settings']['dtype']}."]
    pf = j.get("peak_forward")
    if pf:
        lines.append(f"One plain forward pass of {pf['batch']} x {pf['seq_len']} tokens: {pf['tokens_per_s']:.0f} "
                     f"tokens/s = {pf.get('tflops_per_s', 0):.3g} TFLOP/s.")
    lines += ["", f"| mode | questions/s | x reference | seconds | model tokens | TFLOP/s | % of matmul ceiling | "
                  f"% of datasheet peak | {_mem_label(result)} |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in j["modes"].items():
        lines.append(f"| {name} | {m['questions_per_s']:.2f} | {m['ratio_to_reference']:.1f} | {m['seconds']:.2f} | "
                     f"{m.get('model_tokens', '')} | {_num(m.get('tflops_per_s'))} | "
                     f"{_pct(m.get('fraction_of_matmul_ceiling'))} | {_pct(m.get('fraction_of_datasheet_peak'))} | "
                     f"{m['peak_rss_mb']:.0f} |")
    lv = j.get("letter_vs_generation")
    if lv:
        lines += ["", f"Letter-logprob (shared-prefix scoring) against the first step of greedy generation "
                      f"(generate's own forward) on {lv['questions']} questions: the same letter ranks first in "
                      f"{100 * lv['agreement']:.1f}%; letter log-probs differ by at most "
                      f"{_num(lv['max_abs_logprob_diff'], '.2g')} (mean {_num(lv['mean_abs_logprob_diff'], '.2g')}); "
                      f"the median gap between the top two letters is {_num(lv['median_top2_gap'], '.3g')}"
                      + (f", and every disagreement had a gap of at most {lv['largest_gap_among_disagreements']}"
                         if lv.get("largest_gap_among_disagreements") is not None else "")
                      + f". The random model's greedy first token is a letter for "
                        f"{100 * lv['greedy_first_token_is_a_letter']:.1f}% of questions, so agreement with "
                        "generated text is not a measure here."]
    lines += ["", "FLOP rates count 2 x layer parameters per token run through the model (no LM head, no attention "
                  "scores), so they are lower bounds."]
    return lines


def _captioner(result: dict[str, Any], c: dict[str, Any]) -> list[str]:
    lines = ["", "## Captioner", "",
             f"HFCaptioner.caption (the evaluator's path), prompt \"{c['prompt']}\", attention "
             f"{c['attn_implementation']}, {c['dtype']}; seeded noise images; a random model seldom stops early, so "
             "captions run to the token limit.", "",
             f"| image | batch | decoding | images/s | generated tokens/s | tokens per caption | image tokens | "
             f"seconds | TFLOP/s | % of matmul ceiling | weights read (TB/s) | {_mem_label(result)} |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in c["runs"]:
        dec = "greedy" if r["temperature"] == 0 else f"sampled T={r['temperature']}"
        lines.append(f"| {r['image_size']}x{r['image_size']} | {r['batch']} | {dec} | {r['images_per_s']:.3f} | "
                     f"{_num(r['generated_tokens_per_s'], '.4g')} | {r['mean_generated_per_image']:.0f} | "
                     f"{r['image_tokens_per_image']} | {r['seconds']:.2f} | {r['tflops_per_s']:.3g} | "
                     f"{_pct(r['fraction_of_matmul_ceiling'])} | {r['weight_read_tb_s']:.3g} | "
                     f"{r['peak_memory_mb']:.0f} |")
    if c.get("skipped_for_time"):
        lines.append(f"\nSkipped for the time budget: {'; '.join(c['skipped_for_time'])}.")
    lines += ["", "'Weights read' is weight bytes x decode steps / wall time: every decode step reads all weights "
                  "once, so this is a floor on the memory traffic of decoding (KV cache not counted)."]
    return lines


def _training(result: dict[str, Any], t: dict[str, Any]) -> list[str]:
    w = t["weights"]
    steps = ", ".join(f"{s:.2f}" for s in t["step_seconds"])
    gen = ", ".join(f"{s:.2f}" for s in t["generate_seconds"])
    rew = ", ".join(f"{s:.2f}" for s in t["reward_seconds"])
    return ["", "## Training (caprl-train GRPO)", "",
            f"{t['steps']} GRPO steps on trl's GRPOTrainer: one image of {t['image_size']}x{t['image_size']} per step, "
            f"a group of {t['group']} captions of at most {t['max_completion_length']} tokens, rewarded in process by "
            f"the judge ({t['reward_scoring']}, {t['questions_per_caption']} questions per caption); policy weights "
            f"{t['policy_dtype']}, bf16 autocast {'on' if t['bf16_autocast'] else 'off'}, gradient checkpointing "
            f"{'on' if t['gradient_checkpointing'] else 'off'}, learning rate {t['learning_rate']}.", "",
            f"- step seconds: {steps} (trainer built in {t['trainer_build_seconds']} s)",
            f"- of which generation: {gen}; reward: {rew}",
            f"- {_mem_label(result)}: {t['peak_memory_mb']:.0f} (before training {t['memory_before_mb']:.0f})",
            f"- weights changed by the updates: {100 * w['fraction_changed']:.2f}% of {w['sampled_weights']} sampled "
            f"weights, in {w['tensors_changed']} of {w['tensors']} tensors"]


def to_markdown(result: dict[str, Any]) -> str:
    lines = _header(result)
    renderers = {"judge": _judge, "captioner": _captioner, "training": _training}
    for name, sec in result.get("sections", {}).items():
        if "error" in sec:
            lines += ["", f"## {name.capitalize()}", "", f"Failed: {sec['error']}"]
        elif "skipped" in sec:
            lines += ["", f"## {name.capitalize()}", "", f"Skipped: {sec['skipped']}"]
        else:
            lines += renderers[name](result, sec)
        if "section_seconds" in sec:
            lines.append(f"\nSection time: {sec['section_seconds']} s.")
    if "elapsed_seconds" in result:
        lines += ["", f"Whole run: {result['elapsed_seconds']} s."]
    return "\n".join(lines) + "\n"
