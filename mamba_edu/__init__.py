"""mamba-edu: selective state space models (Mamba) from first principles to GPU kernels.

One module per concept (a learner finds chapter N's code in one hop):

    hippo       HiPPO operators, online projection of a signal, reconstruction
    discretize  zero-order hold, bilinear, Euler
    lti         LTI SSMs: recurrent mode, convolution kernels, FFT convolution
    scan        the associative operator for h_t = a_t·h_{t-1} + b_t and parallel scans
    selective   S6 and the selective scan (reference, naive, parallel)
    models      S4D layer, Mamba block, tiny language model, recurrent decoding
    textlm      a byte-level language model trained on the Python standard library's source
    probe       looking inside a trained model: per-token Δ, every state, what each token leaves
    block_reading  a language model reading a text: every stage of every block, token by token
    registry    the registry of selective-scan implementations and the dispatcher
    machine     the device found and its memory hierarchy (queried, and datasheets)
    iomodel     the bytes each implementation moves (IO model), the roofline
    cost        memory against L: attention's scores and KV cache against a fixed state
    measure     timing and peak-memory helpers, measured floors
    bench       the benchmark (`mamba-edu bench`): check, then time, JSON results
    kernels     Triton kernels (imported lazily; need a GPU or TRITON_INTERPRET=1)

Quick use:

    import mamba_edu
    out = mamba_edu.selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus=True)
    mamba_edu.implementations()   # name -> registry entry
"""

from .registry import Implementation, implementations, selective_scan
from .selective import selective_scan_ref

__version__ = "0.1.0"

__all__ = ["selective_scan", "selective_scan_ref", "implementations", "Implementation", "__version__"]
