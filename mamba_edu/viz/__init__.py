"""Figure builders: one function per picture, shared by the notebooks and the app.

Every builder takes tensors or numbers computed by the library (never computes the math itself
beyond arranging it for display) and returns a `plotly.graph_objects.Figure` with labelled axes
(with units where there are any) and the project's colour scales. One module per topic; all
builders are re-exported here.
"""

from ._style import COLORS, DIVERGING, SEQUENTIAL, style

__all__ = ["COLORS", "DIVERGING", "SEQUENTIAL", "style"]
