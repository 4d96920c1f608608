"""mamba_edu.kernels.sass (benchmarks/sass_fused.py, notebook 09): the fused kernels compiled for an H100
on this machine (no GPU needed), with the instruction accounting checked against what the kernels must do."""

import pytest

pytest.importorskip("triton")
from mamba_edu.kernels import sass  # noqa: E402

if not (sass.TOOLS / "nvdisasm").exists():
    pytest.skip("this Triton has no nvdisasm (it ships with Triton's Linux wheels)", allow_module_level=True)

MAIN = (8, 1536, 2048, 16)


@pytest.fixture(scope="module")
def rows():
    rows = sass.analyse(MAIN, kind="seq") + sass.analyse(MAIN, kind="lscan") + \
        sass.analyse(MAIN, training=True) + sass.analyse(MAIN, training=True, kind="lscan")
    return {(r["kernel"], r["training"]): r for r in rows}


def test_every_kernel_is_compiled_at_the_launch_configuration(rows):
    seq, lscan = rows[("_fwd_seq_kernel", False)], rows[("_fwd_lscan_kernel", False)]
    assert seq["config"]["LANES"] == 4 and seq["config"]["BLOCK_D"] == 8 and seq["grid"] == [1536 // 8, 8]
    assert lscan["config"]["BLOCK_D"] == 1 and lscan["grid"] == [1536, 8]
    assert rows[("_bwd_lscan_kernel", True)]["config"]["HAS_Z"] is True
    # training: the seq forward writes a checkpoint every K steps and the seq backward reads them
    fwd, bwd = rows[("_fwd_seq_kernel", True)], rows[("_bwd_seq_kernel", True)]
    assert fwd["config"]["BLOCK_L"] == fwd["config"]["K"] == bwd["config"]["K"] == 8
    assert bwd["config"]["LANES"] == 4 and bwd["config"]["E"] == 4 and bwd["grid"] == [1536 // 8, 8]


def test_one_exp2_per_element_forward_two_backward(rows):
    """The forwards compute a = 2^(Δ·A·log2 e) once per (t, n), plus two per (t, d) (softplus, the gate)
    that N = 16 entries share; in seq each of a channel's LANES lanes computes those two for its
    N/LANES entries (1 + 2·LANES/16 in all); the backward recomputes a_t and a_{t+1}. A count outside
    these bounds means the accounting of elements per lane, or a kernel, changed. The seq backward
    computes a_t once per (t, n) (its recompute and its reverse walk share it) and three per (t, d):
    softplus, the gate and the softplus's derivative."""
    lanes = rows[("_fwd_seq_kernel", False)]["config"]["LANES"]
    for key, (low, high) in {("_fwd_seq_kernel", False): (1, 1 + 2 * lanes / 16),
                             ("_fwd_lscan_kernel", False): (1, 1.25),
                             ("_bwd_lscan_kernel", True): (2, 2.5),
                             ("_bwd_seq_kernel", True): (1, 1 + 3 * 4 / 16)}.items():
        assert low <= rows[key]["exp2_per_element"] <= high, (key, rows[key]["exp2_per_element"])


def test_no_kernel_spills_to_local_memory(rows):
    """Register spills go to the stack frame (cuobjdump's STACK); LOCAL counts declared local arrays."""
    for key, r in rows.items():
        assert r["local"] == 0, (key, r["local"])
        assert r["stack"] == 0, (key, r["stack"])
        assert r["spill_instructions_in_loop"] == 0, key
        assert 0 < r["registers"] <= 255
        assert r["instructions_per_element"] > 4  # at least exp2, two multiply-adds and a multiply


def test_loops_are_found_from_branches_back_to_labels():
    text = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
.L_x_1:
        /*0010*/                   FADD R2, R2, 1 ;
.L_x_0:
        /*0020*/                   MUFU.EX2 R3, R2 ;
        /*0030*/               @P0 BRA `(.L_x_0) ;
        /*0040*/               @P1 BRA `(.L_x_1) ;
        /*0050*/                   EXIT ;
"""
    ins, spans = sass.loops(text)
    assert [sass.opcode(i) for i in ins] == ["MOV", "FADD", "MUFU.EX2", "BRA", "BRA", "EXIT"]
    assert spans == [(2, 3), (1, 4)]
