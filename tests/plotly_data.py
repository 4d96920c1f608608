"""Decode the arrays of a plotly figure's spec (fig.to_dict(), to_json() or an AppTest chart's spec).

Plotly writes numpy arrays as {'dtype', 'bdata'[, 'shape']} (base64), plain lists otherwise; the
tests compare those numbers with the library's, so they decode them here, once.
"""

import base64

import numpy as np
import torch


def arr(v) -> np.ndarray:
    """A trace array as float64 numpy (reshaped when plotly recorded a shape; None becomes NaN)."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        if "shape" in v:  # "24, 300"
            a = a.reshape([int(n) for n in str(v["shape"]).split(",")])
        return a.astype(np.float64)
    return np.asarray(v, dtype=np.float64)


def tensor(v) -> torch.Tensor:
    """The same as a float64 torch tensor."""
    return torch.from_numpy(arr(v).copy())


def title(spec) -> str:
    """A figure's title as one line (viz wraps long titles with <br> so that they fit a phone)."""
    return (spec["layout"].get("title", {}).get("text") or "").replace("<br>", " ")


def charts_by_title(at) -> dict:
    """{one-line title: decoded plotly spec} of every chart an AppTest page drew."""
    import json

    return {title(s): s for s in (json.loads(c.proto.spec) for c in at.get("plotly_chart"))}


def by_prefix(figs: dict, prefix: str) -> dict:
    """The one figure whose title starts with `prefix`."""
    (spec,) = [v for k, v in figs.items() if k.startswith(prefix)]
    return spec
