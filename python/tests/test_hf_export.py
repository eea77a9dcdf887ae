"""`goreweight-train export RUN --hf OUT` gives a transformers GPT-2 model
equal to the Go model.

A tiny model is trained for a few steps with goreweight-train (built here
from the source tree), exported, and loaded with
`GPT2LMHeadModel.from_pretrained`. Its log-probabilities on a fixed input
must equal the Go model's to 1e-4; the Go side's come from a Go test helper
(TestHelperLogProbs in goreweight/trainer/cmd/goreweight-train) that derives
them from the model's public Evaluate, independently of the exporter.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

REPO = pathlib.Path(__file__).resolve().parents[2]
GO = shutil.which("go") or os.environ.get("GOREWEIGHT_GO")
CMD = "./goreweight/trainer/cmd/goreweight-train"

pytestmark = pytest.mark.skipif(not GO, reason="the Go toolchain builds goreweight-train and the Go-side helper")


def _corpus(path: pathlib.Path) -> None:
    lines = [f"{i % 17} plus {i % 5} is {i % 17 + i % 5}; the model learns sample {i}." for i in range(800)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    exe = tmp_path_factory.mktemp("bin") / "goreweight-train"
    subprocess.run([str(GO), "build", "-o", str(exe), CMD], cwd=REPO, check=True)
    return exe


@pytest.fixture(scope="module")
def helper(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    exe = tmp_path_factory.mktemp("bin") / "export.test"
    subprocess.run([str(GO), "test", "-c", "-o", str(exe), CMD], cwd=REPO, check=True)
    return exe


def _train_and_export(binary: pathlib.Path, tmp: pathlib.Path, tokenizer: str) -> tuple[pathlib.Path, pathlib.Path]:
    corpus = tmp / "corpus.txt"
    _corpus(corpus)
    run, hf = tmp / "run", tmp / "hf"
    subprocess.run(
        [str(binary), "--data", str(corpus), "--tokenizer", tokenizer, "--strategy", "linupper",
         "--steps", "6", "--batch", "4", "--seq", "16", "--layers", "2", "--heads", "2", "--width", "16",
         "--lr", "1e-2", "--warmup-r", "1", "--eval-every", "3", "--ckpt-every", "3", "--val-max", "8",
         "--threads", "1", "--seed", "1", "--quiet", "--out", str(run)],
        check=True, stdout=subprocess.DEVNULL,
    )
    subprocess.run([str(binary), "export", str(run), "--hf", str(hf)], check=True, stdout=subprocess.DEVNULL)
    return run, hf


def _go_reference(
    helper: pathlib.Path, run: pathlib.Path, tokens: list[int], logprobs: bool, out: pathlib.Path
) -> dict[str, Any]:
    arg = {"checkpoint": str(run / "linupper" / "checkpoint.zip"), "tokens": tokens, "out": str(out), "logprobs": logprobs}
    subprocess.run(
        [str(helper), "-test.count=1", "-test.run", "^TestHelperLogProbs$"],
        check=True, env={**os.environ, "GOREWEIGHT_LOGPROBS": json.dumps(arg)}, stdout=subprocess.DEVNULL,
    )
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _load(hf: pathlib.Path) -> Any:
    model, info = transformers.GPT2LMHeadModel.from_pretrained(str(hf), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    model.eval()
    return model


def test_byte_model_logits_match_go(binary: pathlib.Path, helper: pathlib.Path, tmp_path: pathlib.Path) -> None:
    run, hf = _train_and_export(binary, tmp_path, "byte")
    text = "3 plus 4 is 7; th"
    tokens = list(text.encode())[:16]
    ref = _go_reference(helper, run, tokens, True, tmp_path / "go.json")
    model = _load(hf)
    assert model.config.activation_function == "gelu_new"
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    with torch.no_grad():
        logits = model(torch.tensor([tokens])).logits[0].double()
    got = torch.log_softmax(logits, dim=-1)
    want = torch.tensor(ref["logprobs"], dtype=torch.float64)
    assert got.shape == want.shape == (len(tokens), 256)
    assert (got - want).abs().max().item() < 1e-4
    # The model was trained: its predictions are far from uniform.
    assert (want.max(dim=-1).values - (-torch.log(torch.tensor(256.0)))).min().item() > 0.1

    # The same next-token loss as Go's (HF shifts the labels itself).
    with torch.no_grad():
        loss = model(torch.tensor([tokens]), labels=torch.tensor([tokens])).loss.item()
    assert abs(loss - ref["loss"]) < 1e-4, (loss, ref["loss"])


def test_checkpoint_reads_with_safetensors(binary: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """The run's own checkpoint.zip opens with zipfile + safetensors, and the
    export holds the same values (Conv1D weights transposed)."""
    import zipfile

    from safetensors.numpy import load, load_file

    run, hf = _train_and_export(binary, tmp_path, "byte")
    ckpt = zipfile.ZipFile(run / "linupper" / "checkpoint.zip")
    params = load(ckpt.read("model.safetensors"))
    adamw = load(ckpt.read("adamw.safetensors"))
    meta = json.loads(ckpt.read("meta.json"))
    assert meta["format"] == 2 and meta["step"] == 6
    assert set(adamw) == {f"{k}.{n}" for n in params for k in ("exp_avg", "exp_avg_sq")}
    for n, p in params.items():
        assert adamw[f"exp_avg.{n}"].shape == p.shape
        assert (adamw[f"exp_avg_sq.{n}"] >= 0).all()
    exported = load_file(str(hf / "model.safetensors"))
    assert len(exported) == len(params)
    for n, p in params.items():
        e = exported["transformer." + n + (".weight" if n in ("wte", "wpe") else "")]
        if p.ndim == 2 and n.startswith("h."):
            e = e.T
        assert (e == p).all(), n


def test_byte_tokenizer_file(binary: pathlib.Path, tmp_path: pathlib.Path) -> None:
    _, hf = _train_and_export(binary, tmp_path, "byte")
    tok = transformers.AutoTokenizer.from_pretrained(str(hf))
    s = "héllo wörld\n\t  ~\x00\x7f ✓"
    ids = tok(s)["input_ids"]
    assert ids == list(s.encode("utf-8"))
    assert tok.decode(ids) == s
    # The one-step evaluation path: an HF pipeline on the exported directory.
    gen = transformers.pipeline("text-generation", model=str(hf), tokenizer=str(hf), device="cpu")
    out = gen("3 plus 4 is", max_new_tokens=4, do_sample=False)
    assert out[0]["generated_text"].startswith("3 plus 4 is")


def test_gpt2_tokenizer_export(binary: pathlib.Path, helper: pathlib.Path, tmp_path: pathlib.Path) -> None:
    run, hf = _train_and_export(binary, tmp_path, "gpt2")
    cfg = json.loads((hf / "config.json").read_text())
    assert cfg["vocab_size"] == 50257 and cfg["eos_token_id"] == 50256 and cfg["bos_token_id"] == 50256
    assert not (hf / "tokenizer.json").exists()  # the standard "gpt2" tokenizer applies
    tokens = [50256, 464, 2746, 22974, 257, 3463, 329, 1123, 6291, 13, 220, 18, 5556, 604, 318, 767]
    ref = _go_reference(helper, run, tokens, False, tmp_path / "go.json")
    model = _load(hf)
    with torch.no_grad():
        loss = model(torch.tensor([tokens]), labels=torch.tensor([tokens])).loss.item()
    assert abs(loss - ref["loss"]) < 1e-4


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
