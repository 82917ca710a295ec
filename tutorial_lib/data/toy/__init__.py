"""The embedded toy datasets `toy-cardiac` and `toy-prostate` (deterministic, vectorised).

- `dataset`: generate the volumes, write them in the prepared format, cache them by parameters;
- `options`: the shape, intensity and noise settings (`ToyCardiacOptions`, `ToyProstateOptions`);
- `anatomy`: per-slice shape parameters and the rendering of each anatomy;
- `render`: the vectorised pixel kernels (ellipses, smooth fields, blur, noise, normalisation).
"""
