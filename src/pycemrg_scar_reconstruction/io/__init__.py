"""File input and output, one module per kind of file.

* :mod:`.paths`: suffixes, required inputs, atomic writes, JSON;
* :mod:`.meshes`: meshes in (any pyvista format or openCARP) and out (meshes, predictions);
* :mod:`.opencarp`: openCARP ``.pts`` / ``.elem``;
* :mod:`.images`: NIfTI, ITK formats, VTK slice layers, and a stack read and converted;
* :mod:`.artifacts`: training data (``.npz``) and model checkpoints (``.pt``).
"""
