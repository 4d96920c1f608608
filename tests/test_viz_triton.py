"""mamba_edu.viz.triton.program_map: the cells show the table a kernel wrote."""

import pytest
import torch

from mamba_edu.viz._style import COLORS
from mamba_edu.viz.triton import program_map


def test_program_map_colours_owned_cells_and_greys_masked_ones():
    table = torch.tensor([[0, 1, 2, 3], [4, 5, -1, -1]])  # element index per (program, lane), −1 masked
    owner = torch.where(table >= 0, torch.arange(2)[:, None], -1)
    fig = program_map(owner, text=table, x_title="lane", y_title="program", title="t")
    d = fig.to_dict()
    masked, programs = d["data"]
    # owned cells: program p at the middle of colour band p; masked cells absent from this layer
    assert programs["z"] == [[0.5] * 4, [1.5, 1.5, None, None]]
    assert programs["customdata"] == [[0, 0, 0, 0], [1, 1, -1, -1]]
    assert masked["z"] == [[None] * 4, [None, None, 1.0, 1.0]]
    assert programs["text"] == [["0", "1", "2", "3"], ["4", "5", "masked", "masked"]]
    scale = programs["colorscale"]
    assert scale[0][1] == COLORS[0] and scale[2][1] == COLORS[1]
    assert d["layout"]["xaxis"]["title"]["text"] == "lane" and d["layout"]["yaxis"]["title"]["text"] == "program"


def test_program_map_cycles_colours_beyond_the_palette():
    owner = [[p] for p in range(len(COLORS) + 2)]
    z = program_map(owner).to_dict()["data"][1]["z"]
    assert [row[0] for row in z] == [(p % len(COLORS)) + 0.5 for p in range(len(COLORS) + 2)]


@pytest.mark.parametrize("bad", [[], [[0, 1], [2]]])
def test_program_map_rejects_ragged_or_empty_tables(bad):
    with pytest.raises(ValueError, match="program_map: argument 'owner'"):
        program_map(bad)
