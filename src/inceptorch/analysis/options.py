"""The values analysis's options take, as plain data: the command line offers them without importing torch."""

DRAW_FORMATS = (".svg", ".png", ".pdf")  # what `draw_model` writes (matplotlib's vector and raster backends)
