"""tutorial_lib: segmentation supervised by a few global shape descriptors.

A course and library around Kervadec et al., "Beyond pixel-wise supervision for segmentation:
A few global shape descriptors might be surprisingly good!" (MIDL 2021).
"""

__version__ = "0.1.0"
